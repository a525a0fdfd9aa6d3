"""How big and how fast is a model? Parameters, multiply-accumulates, receptive field, latency.

* **Parameters** are counted once, however often a layer is reused.
* **MACs** (multiply-accumulate operations) are counted with forward hooks on every
  ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` call, so a layer that a recursive network
  applies 16 times is counted 16 times: recursion saves parameters, not computation.
  Element-wise operations (activations, additions, batch norm, pixel shuffle) are
  ignored, as is customary; they are a small fraction of the work.
* The MAC count runs the model on PyTorch's ``meta`` device, which propagates shapes
  without computing anything, so it is instant even for a 43M-parameter model on a large
  image.
* The **receptive field** (:func:`receptive_radius`) bounds how far, in input pixels, an
  output pixel can see; it is what tiled inference (:func:`srlib.inference.chop_forward`)
  needs as its margin.
* **Latency** is the median wall-clock time of a few forward passes (after warm-up runs)
  with gradients disabled, in milliseconds, on the model's device.

Conventions: one conv MAC is one multiplication plus one addition; FLOPs are about twice
the MACs.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from itertools import chain

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["Profile", "profile", "count_macs", "layer_calls", "receptive_radius"]


@dataclass
class LayerCall:
    """One call of a leaf module during a forward pass."""

    name: str
    module: nn.Module
    input_shape: tuple
    output_shape: tuple


def layer_calls(
    model: nn.Module, input_shape: tuple, kinds=(nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
) -> tuple[list[LayerCall], tuple]:
    """Run ``model`` on the meta device and record every call of a module of ``kinds``.

    Returns ``(calls, output_shape)``. Nothing is computed and the model is not modified:
    its parameters and buffers are swapped for shape-only meta tensors for this one call.
    """
    names = {module: name for name, module in model.named_modules()}
    calls: list[LayerCall] = []

    def hook(module, inputs, output):
        calls.append(LayerCall(names.get(module, "?"), module, tuple(inputs[0].shape), tuple(output.shape)))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    meta_state = {
        name: torch.empty_like(tensor, device="meta")
        for name, tensor in chain(model.named_parameters(), model.named_buffers())
    }
    # Probe in the model's own precision: a float64 or half model refuses a float32 input.
    dtype = next((t.dtype for t in meta_state.values() if t.is_floating_point()), torch.get_default_dtype())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = functional_call(model, meta_state, (torch.empty(input_shape, device="meta", dtype=dtype),))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if isinstance(output, (list, tuple)):
        output = output[-1]
    return calls, tuple(output.shape)


def _macs_of(call: LayerCall) -> int:
    module = call.module
    if isinstance(module, nn.Conv2d):
        # Every output value is a dot product over (in_channels / groups) x kh x kw inputs.
        kh, kw = module.kernel_size
        out_elements = torch.Size(call.output_shape).numel()
        return out_elements * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        # Every input value is multiplied by a (out_channels / groups) x kh x kw kernel.
        kh, kw = module.kernel_size
        in_elements = torch.Size(call.input_shape).numel()
        return in_elements * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return torch.Size(call.output_shape).numel() * module.in_features
    return 0


def count_macs(model: nn.Module, input_shape: tuple) -> int:
    """Multiply-accumulates of one forward pass on an input of ``input_shape`` (whole batch)."""
    calls, _ = layer_calls(model, input_shape)
    return sum(_macs_of(call) for call in calls)


def receptive_radius(model: nn.Module, channels: int | None = None, probe: int = 16) -> float:
    """Upper bound of the receptive-field radius, in *input* pixels (``inf`` if not local).

    Every convolution with kernel ``k`` working at a resolution ``r`` times the input's
    widens the receptive field by ``(k - 1) / 2 / r`` input pixels; summing over all
    calls (recursions included) bounds the radius. A global pooling makes it infinite.
    """
    channels = channels or getattr(model, "in_channels", 3)
    pooling = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    calls, _ = layer_calls(model, (1, channels, probe, probe), kinds=(nn.Conv2d, nn.ConvTranspose2d) + pooling)
    radius = 0.0
    for call in calls:
        module = call.module
        if isinstance(module, pooling):
            return math.inf
        if isinstance(module, nn.Conv2d):
            pixels_per_input_pixel = call.input_shape[-1] / probe
            reach = max((k - 1) // 2 * d for k, d in zip(module.kernel_size, module.dilation))
        else:  # transposed convolution: an input pixel touches ~k/stride of its neighbours
            pixels_per_input_pixel = call.input_shape[-1] / probe
            reach = max(math.ceil(k / s) for k, s in zip(module.kernel_size, module.stride))
        radius += reach / pixels_per_input_pixel
    return radius


@dataclass
class Profile:
    params: int
    macs: int
    latency_ms: float | None  # None when not measured
    input_shape: tuple
    output_shape: tuple
    latency_runs: list[float] = field(default_factory=list, repr=False)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def as_dict(self) -> dict:
        return {
            "params": self.params,
            "macs": self.macs,
            "latency_ms": self.latency_ms,
            "input_shape": self.input_shape,
            "output_shape": self.output_shape,
        }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile(
    model: nn.Module,
    input_shape: tuple,
    device: torch.device | str | None = None,
    repeats: int = 5,
    warmup: int = 1,
    measure_latency: bool = True,
) -> Profile:
    """Parameters, MACs and median latency of ``model`` on a random input of ``input_shape``.

    ``device=None`` times the model where its parameters are; otherwise the model is moved
    to ``device`` first (in place, like ``model.to``). Set ``measure_latency=False`` to
    only count.
    """
    params = sum(p.numel() for p in model.parameters())
    calls, output_shape = layer_calls(model, input_shape)
    macs = sum(_macs_of(call) for call in calls)
    latency, runs = None, []
    if measure_latency:
        if device is not None:
            model.to(device)
        first = next(chain(model.parameters(), model.buffers()), None)
        run_device = first.device if first is not None else torch.device("cpu")
        x = torch.rand(input_shape, device=run_device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for _ in range(warmup):
                    model(x)
                _synchronize(run_device)
                for _ in range(max(1, repeats)):
                    start = time.perf_counter()
                    model(x)
                    _synchronize(run_device)
                    runs.append((time.perf_counter() - start) * 1000)
        finally:
            model.train(was_training)
        latency = statistics.median(runs)
    return Profile(params, macs, latency, tuple(input_shape), output_shape, runs)
