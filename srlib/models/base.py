"""What every model of the zoo is: one :class:`ModelSpec` declaration and an :class:`SRModel`.

Each model file states everything about its paper once, as a spec next to the class::

    SPEC = ModelSpec(name="espcn", paper_name="ESPCN", paper="W. Shi et al. ...",
                     scales=(2, 3, 4), input="lr", channels=1,
                     sizes={"paper": {"n1": 64, "n2": 32}, ...}, loss=loss, ...)

    class ESPCN(SRModel):
        spec = SPEC

Assigning the spec in the class body binds the two (``SPEC.model_class is ESPCN``), so the
registry only collects specs. A model instance learns everything else from its class and
its constructor: its name, scale, input convention, channel count and configuration.
"""
from __future__ import annotations

import copy
import inspect
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import nn

__all__ = ["ModelSpec", "SRModel"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the rest of the library needs to know about one model."""

    name: str
    paper_name: str
    paper: str  # full citation
    scales: tuple[int, ...]
    input: str  # "lr": the model enlarges the LR image; "upsampled": it takes the bicubic-upsampled image
    channels: int  # 1 (Y) or 3 (RGB)
    sizes: Mapping[str, Mapping[str, Any]]  # size -> constructor kwargs (without scale);
    # a value may be a {scale: value} dict when the paper's setting depends on the scale
    loss: Callable[..., Any] = field(repr=False)  # loss(model, net_input, hr)
    description: str = ""
    size_notes: Mapping[str, str] = field(default_factory=dict, repr=False)  # size -> what it is
    paper_params: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # The class whose body assigns this spec (see __set_name__).
    model_class: type | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.input not in ("lr", "upsampled"):
            raise ValueError(f"{self.name}: input must be 'lr' or 'upsampled', got {self.input!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"{self.name}: channels must be 1 or 3, got {self.channels!r}")
        freeze = object.__setattr__  # store the normalised, read-only forms of the declared values
        freeze(self, "scales", tuple(int(s) for s in self.scales))
        freeze(self, "sizes", MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.sizes.items()}))
        freeze(self, "size_notes", MappingProxyType(dict(self.size_notes)))
        freeze(self, "paper_params", MappingProxyType(dict(self.paper_params)))

    def __set_name__(self, owner: type, attribute: str) -> None:
        # Python calls this when a class body assigns the spec: ``class ESPCN(SRModel): spec = SPEC``.
        if self.model_class is not None and self.model_class is not owner:
            raise TypeError(f"spec {self.name!r} already belongs to {self.model_class.__name__}")
        object.__setattr__(self, "model_class", owner)

    @property
    def doc(self) -> str:
        """The docstring of the model's module: what the paper did and how it is implemented."""
        return inspect.getdoc(inspect.getmodule(self.model_class)) or ""

    def check_scale(self, scale) -> int:
        """``scale`` as an int, or a ``ValueError`` naming the scales the paper supports."""
        if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or int(scale) not in self.scales:
            raise ValueError(f"{self.paper_name} supports scales {self.scales}, got {scale!r}")
        return int(scale)


class SRModel(nn.Module):
    """Base class of every network in the zoo.

    A subclass assigns its :class:`ModelSpec` in its body (``spec = SPEC``) and calls
    ``super().__init__(scale)``. Every instance then answers, from its class and its
    constructor alone:

    * ``scale`` -- the factor it was built for (bookkeeping only for upsampled-input models);
    * ``srlib_name`` -- the registry name, ``spec.name``;
    * ``srlib_config`` -- the constructor arguments as given (defaults left out) plus the
      scale, so that ``rebuild(model.srlib_name, model.srlib_config)`` recreates the
      architecture and a checkpoint saved before an argument existed still matches;
    * ``input_kind`` -- ``"lr"`` when the network takes the low-resolution image and
      enlarges it itself, ``"upsampled"`` when it takes the bicubic-upsampled image and
      returns an image of the same size. It is ``spec.input`` unless the configuration
      changes it (ESPCN's HR-space twin overrides this property);
    * ``in_channels`` -- ``spec.channels``: 1 for the luminance (Y) channel, 3 for RGB.
    """

    spec: ClassVar[ModelSpec]

    def __new__(cls, *args, **kwargs):
        model = super().__new__(cls)
        try:
            given = inspect.signature(cls.__init__).bind(None, *args, **kwargs).arguments
        except TypeError:  # wrong arguments: __init__ raises the usual error right after
            given = {}
        config = dict(list(given.items())[1:])  # without self
        object.__setattr__(model, "srlib_config", copy.deepcopy(config))
        return model

    def __init__(self, scale: int):
        super().__init__()
        self.scale = self.spec.check_scale(scale)
        self.srlib_config["scale"] = self.scale  # always recorded: rebuild needs it

    @property
    def srlib_name(self) -> str:
        return self.spec.name

    @property
    def input_kind(self) -> str:
        return self.spec.input

    @property
    def in_channels(self) -> int:
        return self.spec.channels

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` that says what is wrong with ``x``, if anything is."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(
                f"{name} expects a batch of shape (N, {self.in_channels}, H, W), "
                f"got a tensor with shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            what = "Y (luminance)" if self.in_channels == 1 else "RGB"
            raise ValueError(
                f"{name} works on {self.in_channels}-channel {what} images: expected "
                f"shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
