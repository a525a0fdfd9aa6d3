"""The model zoo: one file per paper, one registry to build them all.

>>> from srlib.models import build, spec
>>> model = build("fsrcnn", scale=3)              # the paper's configuration
>>> small = build("edsr", scale=2, size="quick")  # reduced, for a CPU minute
>>> spec("fsrcnn").input, spec("fsrcnn").channels
('lr', 1)

Conventions shared by every model:

* input and output are float tensors ``(N, C, h, w)`` in ``[0, 1]``; ``C`` is 1 (the Y
  channel) or 3 (RGB) as the paper used, see ``spec(name).channels``;
* ``spec(name).input == "lr"``: the model takes the LR image and returns ``scale`` times
  larger images; ``"upsampled"``: it takes the bicubic-upsampled image and returns an
  image of the same size (``model.scale`` is then bookkeeping only);
* outputs are not clamped or quantised: evaluation does that;
* ``model.scale``, ``model.srlib_name`` and ``model.srlib_config`` (a JSON-able dict of
  constructor arguments) are set on every built model, and
  ``rebuild(model.srlib_name, model.srlib_config)`` recreates the architecture exactly;
* ``spec(name).loss(model, net_input, hr)`` is the paper's training loss. It also accepts
  ``loss(model, net_input, lr, hr)``; the LR image is not needed by any model (models
  with LR input receive it as ``net_input``).

Sizes: ``"paper"`` is the published configuration and ``"quick"`` a reduced one meant to
train for about a minute on a 2-core CPU with 32-48 pixel patches (for the smallest
papers it is the published network itself). Some models have more named sizes, listed
in ``spec(name).sizes``.
"""
from __future__ import annotations

import copy
import inspect
import json
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from torch import nn

from . import drcn, drn, drrn, edsr, espcn, fsrcnn, lapsrn, mdsr, srcnn, vdsr

__all__ = ["ModelSpec", "REGISTRY", "build", "rebuild", "spec", "list_models", "count_parameters"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the rest of the library needs to know about one model."""

    name: str
    paper_name: str
    paper: str  # full citation
    scales: tuple[int, ...]
    input: str  # "lr" or "upsampled"
    channels: int  # 1 (Y) or 3 (RGB)
    sizes: Mapping[str, Mapping[str, Any]]  # size -> constructor kwargs (without scale);
    # a value may be a {scale: value} dict when the paper's setting depends on the scale
    loss: Callable[..., Any] = field(repr=False)
    description: str = ""
    size_notes: Mapping[str, str] = field(default_factory=dict, repr=False)  # size -> what it is
    paper_params: Mapping[str, Any] = field(default_factory=dict, repr=False)
    model_class: type = field(default=nn.Module, repr=False)

    @property
    def doc(self) -> str:
        """The docstring of the model's module: what the paper did and how it is implemented."""
        return inspect.getdoc(inspect.getmodule(self.model_class)) or ""


def _accept_lr(paper_loss):
    """Let a ``loss(model, net_input, hr)`` also be called as ``loss(model, net_input, lr, hr)``."""

    def loss(model, net_input, *targets, **kwargs):
        if len(targets) == 1:
            hr = targets[0]
        elif len(targets) == 2:
            hr = targets[1]  # (lr, hr): the LR image is not needed
        else:
            raise TypeError("call loss(model, net_input, hr) or loss(model, net_input, lr, hr)")
        return paper_loss(model, net_input, hr, **kwargs)

    loss.__doc__ = paper_loss.__doc__
    loss.__name__ = f"{paper_loss.__module__.rsplit('.', 1)[-1]}_loss"
    loss.__wrapped__ = paper_loss
    return loss


def _spec_from_module(name: str, paper_name: str, module) -> ModelSpec:
    sizes = {size: MappingProxyType(dict(config)) for size, config in module.SIZES.items()}
    return ModelSpec(
        name=name,
        paper_name=paper_name,
        paper=module.PAPER,
        scales=tuple(module.SCALES),
        input=module.INPUT,
        channels=module.CHANNELS,
        sizes=MappingProxyType(sizes),
        loss=_accept_lr(module.loss),
        description=module.DESCRIPTION,
        size_notes=MappingProxyType(dict(module.SIZE_NOTES)),
        paper_params=MappingProxyType(dict(module.PAPER_PARAMS)),
        model_class=module.MODEL,
    )


REGISTRY: Mapping[str, ModelSpec] = MappingProxyType({
    s.name: s
    for s in (
        _spec_from_module("srcnn", "SRCNN", srcnn),
        _spec_from_module("fsrcnn", "FSRCNN", fsrcnn),
        _spec_from_module("espcn", "ESPCN", espcn),
        _spec_from_module("vdsr", "VDSR", vdsr),
        _spec_from_module("drcn", "DRCN", drcn),
        _spec_from_module("drrn", "DRRN", drrn),
        _spec_from_module("lapsrn", "LapSRN", lapsrn),
        _spec_from_module("edsr", "EDSR", edsr),
        _spec_from_module("mdsr", "MDSR", mdsr),
        _spec_from_module("drn", "DRN", drn),
    )
})


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model (case-insensitive name)."""
    key = str(name).lower()
    if key not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def _instantiate(model_spec: ModelSpec, config: dict) -> nn.Module:
    accepted = inspect.signature(model_spec.model_class.__init__).parameters
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        valid = [p for p in accepted if p != "self"]
        raise ValueError(f"{model_spec.name} does not take {unknown}; its arguments are {valid}")
    model = model_spec.model_class(**config)
    model.srlib_name = model_spec.name
    model.srlib_config = config
    return model


def _for_scale(value, scale: int):
    """Size entries may depend on the scale: ``{4: 16, 8: 8}`` means 16 at x4, 8 at x8."""
    if isinstance(value, Mapping) and value and all(isinstance(k, int) for k in value):
        return value[scale]
    return value


def build(name: str, scale: int, size: str = "paper", **overrides) -> nn.Module:
    """Build model ``name`` for ``scale`` in configuration ``size``, with optional overrides.

    Raises ``ValueError`` (naming the valid choices) for an unknown model, scale or size.
    """
    model_spec = spec(name)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or int(scale) not in model_spec.scales:
        raise ValueError(
            f"{model_spec.paper_name} supports scales {model_spec.scales}, got {scale!r}"
        )
    if size not in model_spec.sizes:
        raise ValueError(
            f"unknown size {size!r} for {model_spec.paper_name}; choose one of: {', '.join(model_spec.sizes)}"
        )
    config = {key: _for_scale(value, int(scale)) for key, value in model_spec.sizes[size].items()}
    config = {**copy.deepcopy(config), **overrides, "scale": int(scale)}
    try:
        json.dumps(config)
    except TypeError as error:
        raise ValueError(f"model configuration must be JSON-serialisable: {error}") from None
    model = _instantiate(model_spec, config)
    model.srlib_size = size
    return model


def rebuild(name: str, config: Mapping[str, Any]) -> nn.Module:
    """Recreate a model from ``model.srlib_name`` and ``model.srlib_config`` (e.g. from a checkpoint)."""
    model_spec = spec(name)
    config = copy.deepcopy(dict(config))
    if config.get("scale") not in model_spec.scales:
        raise ValueError(f"{model_spec.paper_name} supports scales {model_spec.scales}, got {config.get('scale')!r}")
    return _instantiate(model_spec, config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (shared weights are counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _format_count(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(int(n))


def list_models() -> list[dict]:
    """One row per model for a table: name, paper, scales, input, channels, paper params."""
    rows = []
    for model_spec in REGISTRY.values():
        published = model_spec.paper_params.get("paper")
        if isinstance(published, Mapping):
            params = " / ".join(f"x{s}: {_format_count(n)}" for s, n in published.items())
        elif published:
            params = _format_count(published)
        else:
            params = "-"
        rows.append({
            "name": model_spec.name,
            "paper": model_spec.paper_name,
            "scales": model_spec.scales,
            "input": model_spec.input,
            "channels": model_spec.channels,
            "paper params": params,
            "sizes": tuple(model_spec.sizes),
        })
    return rows
