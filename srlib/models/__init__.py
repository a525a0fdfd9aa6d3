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
  image of the same size (``model.scale`` is then bookkeeping only). A variant may differ
  from its paper's convention (ESPCN's ``space="hr"`` twin takes the upsampled image):
  ``model.input_kind`` is what the built model takes;
* outputs are not clamped or quantised: evaluation does that;
* every model knows its ``scale``, ``srlib_name``, ``srlib_config`` (a JSON-able dict of
  its constructor arguments), ``input_kind`` and ``in_channels`` from its own class and
  constructor (:class:`srlib.models.base.SRModel`), and
  ``rebuild(model.srlib_name, model.srlib_config)`` recreates the architecture exactly;
* ``spec(name).loss(model, net_input, hr)`` is the paper's training loss (models with LR
  input receive the LR image as ``net_input``).

Sizes: ``"paper"`` is the published configuration and ``"quick"`` a reduced one meant to
train for about a minute on a 2-core CPU with 32-48 pixel patches (for the smallest
papers it is the published network itself). Some models have more named sizes, listed
in ``spec(name).sizes``.

Each model file declares its paper once, ``SPEC = ModelSpec(...)``, and its class refers to
it (``spec = SPEC``, see :mod:`srlib.models.base`); this module only collects the specs.
"""
from __future__ import annotations

import copy
import inspect
import json
from types import MappingProxyType
from typing import Any, Mapping

from torch import nn

from . import drcn, drn, drrn, edsr, espcn, fsrcnn, lapsrn, mdsr, srcnn, vdsr
from .base import ModelSpec

__all__ = ["ModelSpec", "REGISTRY", "build", "rebuild", "spec", "list_models", "count_parameters"]

REGISTRY: Mapping[str, ModelSpec] = MappingProxyType({
    module.SPEC.name: module.SPEC
    for module in (srcnn, fsrcnn, espcn, vdsr, drcn, drrn, lapsrn, edsr, mdsr, drn)
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
    return model_spec.model_class(**config)


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
    scale = model_spec.check_scale(scale)
    if size not in model_spec.sizes:
        raise ValueError(
            f"unknown size {size!r} for {model_spec.paper_name}; choose one of: {', '.join(model_spec.sizes)}"
        )
    config = {key: _for_scale(value, scale) for key, value in model_spec.sizes[size].items()}
    config = {**copy.deepcopy(config), **overrides, "scale": scale}
    try:
        json.dumps(config)
    except TypeError as error:
        raise ValueError(f"model configuration must be JSON-serialisable: {error}") from None
    return _instantiate(model_spec, config)


def rebuild(name: str, config: Mapping[str, Any]) -> nn.Module:
    """Recreate a model from ``model.srlib_name`` and ``model.srlib_config`` (e.g. from a checkpoint)."""
    model_spec = spec(name)
    config = copy.deepcopy(dict(config))
    model_spec.check_scale(config.get("scale"))
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
