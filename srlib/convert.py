"""Converters: the papers' released weights as state dicts of srlib's networks.

Each function takes what the authors released, already read from disk (a MATLAB file's
variables, or a PyTorch state dict), and returns ``{key: tensor}`` for ``load_state_dict`` of
the srlib model named in :mod:`srlib.authors`. Nothing here reads files or builds models.

Rules shared by the MATLAB releases (SRCNN, FSRCNN, VDSR, LapSRN):

* MATLAB stores arrays column-major: a filter kept as a vector of ``k*k`` taps becomes a
  ``k x k`` filter with ``reshape(..., order="F")``, and a ``[H W Cin Cout]`` array becomes
  torch's ``(Cout, Cin, H, W)`` by ``transpose(3, 2, 0, 1)``;
* ``imfilter``, ``vl_nnconv`` and Caffe compute correlations, as ``torch.conv2d`` does, and
  ``deconv.m`` and ``vl_nnconvt`` scatter the kernel unflipped, as
  ``torch.conv_transpose2d`` does: no kernel is flipped;
* every one of these networks works on Y in [0, 1], like srlib's.

EDSR, MDSR and DRN were released as PyTorch state dicts of networks working on RGB in
[0, 255]; srlib's work in [0, 1]. A convolution followed only by linear layers and ReLUs
commutes with that scaling if its bias is divided by 255; the mean shifts are srlib's own
buffers (the same DIV2K mean), and DRN's channel attention, whose sigmoid does not commute
with the scaling, keeps its output by multiplying its first 1x1 weight by 255 instead.
"""
from __future__ import annotations

import re

import numpy as np
import torch

__all__ = ["srcnn", "fsrcnn", "vdsr", "lapsrn", "lapsrn_depth", "edsr", "mdsr", "drn", "ConversionError"]


class ConversionError(ValueError):
    """The file does not hold the network it was converted for."""


def _tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def _taps(vector, k: int) -> np.ndarray:
    """A MATLAB column of ``k*k`` taps as a ``k x k`` filter (column-major)."""
    return np.reshape(np.asarray(vector), (k, k), order="F")


def _side(n_taps: int, what: str) -> int:
    k = int(round(n_taps ** 0.5))
    if k * k != n_taps:
        raise ConversionError(f"{what} has {n_taps} taps per filter, not a square filter")
    return k


def _need(variables: dict, *names: str) -> None:
    missing = [n for n in names if n not in variables]
    if missing:
        raise ConversionError(f"missing {', '.join(missing)}")


# --- SRCNN (SRCNN_v1 test package: weights_conv1..3, biases_conv1..3) ----------------------------
def srcnn(variables: dict) -> dict[str, torch.Tensor]:
    """``weights_conv1`` (f1^2, n1), ``weights_conv2`` (n1, f2^2, n2), ``weights_conv3`` (n2, f3^2)."""
    _need(variables, "weights_conv1", "weights_conv2", "weights_conv3", "biases_conv1", "biases_conv2",
          "biases_conv3")
    w1, w2, w3 = (np.asarray(variables[f"weights_conv{i}"], dtype=np.float64) for i in (1, 2, 3))
    if w1.ndim != 2 or w3.ndim != 2:
        raise ConversionError("SRCNN's first and last weights are 2-D arrays")
    if w2.ndim == 2:  # MATLAB drops a trailing singleton: a 1x1 mapping layer is stored (n1, n2)
        w2 = w2[:, None, :]
    f1, f2, f3 = _side(w1.shape[0], "weights_conv1"), _side(w2.shape[1], "weights_conv2"), \
        _side(w3.shape[1], "weights_conv3")
    n1, n2 = w1.shape[1], w2.shape[2]
    first = np.stack([_taps(w1[:, o], f1) for o in range(n1)])[:, None]
    second = np.stack([np.stack([_taps(w2[i, :, o], f2) for i in range(n1)]) for o in range(n2)])
    third = np.stack([_taps(w3[i, :], f3) for i in range(n2)])[None]
    return {
        "patch_extraction.weight": _tensor(first),
        "patch_extraction.bias": _tensor(np.ravel(variables["biases_conv1"])),
        "nonlinear_mapping.weight": _tensor(second),
        "nonlinear_mapping.bias": _tensor(np.ravel(variables["biases_conv2"])),
        "reconstruction.weight": _tensor(third),
        "reconstruction.bias": _tensor(np.ravel(variables["biases_conv3"])),
    }


# --- FSRCNN (FSRCNN_test package: cells weights_conv, biases_conv, prelu_conv) -------------------
def fsrcnn(variables: dict) -> dict[str, torch.Tensor]:
    """Cells of ``(in, k^2, out)`` convolutions, one PReLU slope per layer, and a last ``(1, 81, d)``
    deconvolution. srlib's layer names follow FSRCNN's five parts."""
    _need(variables, "weights_conv", "biases_conv", "prelu_conv")
    weights = [np.asarray(w, dtype=np.float64) for w in np.ravel(variables["weights_conv"])]
    biases = [np.ravel(b) for b in np.ravel(variables["biases_conv"])]
    slopes = [np.ravel(p) for p in np.ravel(variables["prelu_conv"])]
    m = len(weights) - 4
    if m < 1 or len(biases) != len(weights):
        raise ConversionError(f"FSRCNN has at least five layers, this file has {len(weights)}")
    names = ["feature_extraction.0", "shrinking.0"] + [f"mapping.{2 * j}" for j in range(m)] + ["expanding.0"]
    state = {}
    for layer, (name, w) in enumerate(zip(names, weights)):
        if w.ndim == 2:  # a trailing singleton output axis dropped by MATLAB
            w = w[:, :, None]
        k = _side(w.shape[1], f"weights_conv{{{layer + 1}}}")
        n_in, n_out = w.shape[0], w.shape[2]
        state[f"{name}.weight"] = _tensor(np.stack([np.stack([_taps(w[i, :, o], k) for i in range(n_in)])
                                                    for o in range(n_out)]))
        state[f"{name}.bias"] = _tensor(biases[layer])
        # One slope per layer in the release; srlib's PReLU has one per channel (the paper's).
        prelu = name.rsplit(".", 1)[0] + "." + str(int(name.rsplit(".", 1)[1]) + 1)
        state[f"{prelu}.weight"] = _tensor(np.full(n_out, float(slopes[layer][0])))
    w = weights[-1]
    if w.ndim == 2:
        w = w[:, :, None]
    k = _side(w.shape[1], "the deconvolution")
    state["deconvolution.weight"] = _tensor(np.stack([_taps(w[0, :, j], k) for j in range(w.shape[2])])[:, None])
    state["deconvolution.bias"] = _tensor(biases[-1])
    return state


# --- VDSR (MatConvNet struct model.weight{l}, model.bias{l}) ----------------------------------------
def vdsr(variables: dict) -> dict[str, torch.Tensor]:
    """20 layers of ``[3 3 Cin Cout]`` filters; the last one's trailing singleton is restored."""
    _need(variables, "model")
    model = np.asarray(variables["model"]).ravel()[0]
    try:
        weights, biases = np.ravel(model["weight"]), np.ravel(model["bias"])
    except (ValueError, IndexError, KeyError):
        raise ConversionError("'model' has no weight and bias fields") from None
    state = {}
    for layer, (w, b) in enumerate(zip(weights, biases)):
        w = np.asarray(w, dtype=np.float32)
        if w.ndim == 3:
            w = w[..., None]
        state[f"residual.{2 * layer}.weight"] = _tensor(w.transpose(3, 2, 0, 1))
        state[f"residual.{2 * layer}.bias"] = _tensor(np.ravel(b))
    return state


# --- LapSRN (MatConvNet DagNN: net.params(i).name/.value, net.layers(i).block.size) --------------
def lapsrn(variables: dict) -> dict[str, torch.Tensor]:
    """Parameters named ``input_conv``, ``level{L}_conv{k}``, ``level{L}_upconv``, ``level{L}_residual_conv``
    and ``level{L}_img_up``; the authors number levels from the coarsest, ``level{L}``, down to
    ``level1``, srlib's levels from 0 (coarsest). Expects ``loadmat(..., squeeze_me=True,
    struct_as_record=False)``."""
    _need(variables, "net")
    net = variables["net"]
    try:
        params = {p.name: np.asarray(p.value, dtype=np.float32) for p in np.ravel(net.params)}
        sizes = {np.ravel(layer.params)[0]: tuple(int(n) for n in np.ravel(layer.block.size))
                 for layer in np.ravel(net.layers) if hasattr(layer.block, "size") and np.size(layer.params)}
    except AttributeError:
        raise ConversionError("'net' is not a MatConvNet DagNN with params and layers") from None
    levels = sorted({int(m.group(1)) for m in map(re.compile(r"level(\d+)_").match, params) if m}, reverse=True)
    if not levels:
        raise ConversionError("no LapSRN pyramid level in 'net'")

    def filters(name: str) -> torch.Tensor:
        value = params[name]
        if name in sizes:  # scipy squeezes singleton axes; the layer records the full shape
            value = value.reshape(sizes[name], order="F")
        return _tensor(value.transpose(3, 2, 0, 1))

    state = {"input_conv.0.weight": filters("input_conv_f"), "input_conv.0.bias": _tensor(params["input_conv_b"])}
    for i, level in enumerate(levels):
        prefix, ours = f"level{level}_", f"levels.{i}."
        depth = sum(1 for n in params if re.fullmatch(rf"{prefix}conv\d+_f", n))
        for k in range(1, depth + 1):
            state[f"{ours}feature_convs.{2 * (k - 1)}.weight"] = filters(f"{prefix}conv{k}_f")
            state[f"{ours}feature_convs.{2 * (k - 1)}.bias"] = _tensor(params[f"{prefix}conv{k}_b"])
        for theirs, mine in (("upconv", "feature_upsample"), ("residual_conv", "residual")):
            state[f"{ours}{mine}.weight"] = filters(f"{prefix}{theirs}_f")
            state[f"{ours}{mine}.bias"] = _tensor(params[f"{prefix}{theirs}_b"])
        state[f"{ours}image_upsample.weight"] = filters(f"{prefix}img_up_f")
    return state


def lapsrn_depth(variables: dict) -> int:
    """Convolutions per pyramid level of a released LapSRN (10 at x2/x4, 5 at x8)."""
    names = [p.name for p in np.ravel(variables["net"].params)]
    return sum(1 for n in names if re.fullmatch(r"level1_conv\d+_f", n))


# --- EDSR, MDSR, DRN (PyTorch state dicts on [0, 255]) ----------------------------------------------
def _mean_shift_is_div2k(state: dict) -> None:
    """The released mean shifts must hold the DIV2K mean srlib's own buffers hold."""
    from .models.common import DIV2K_RGB_MEAN

    bias = state.get("sub_mean.bias")
    if bias is not None and not torch.allclose(bias.double(), -255 * torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float64),
                                              atol=1e-3):
        raise ConversionError(f"its mean shift is {(-bias / 255).tolist()}, not the DIV2K mean")


def _on_unit_range(state: dict) -> dict[str, torch.Tensor]:
    """Weights for [0, 1] images from weights for [0, 255] ones: every bias divided by 255."""
    return {k: v.float() / 255 if k.endswith(".bias") else v.float() for k, v in state.items()}


def _rename(state: dict, rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key.startswith(("sub_mean.", "add_mean.")):
            continue  # srlib's MeanShift buffers hold the same mean
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def _state_dict(variables) -> dict:
    if not isinstance(variables, dict) or not all(isinstance(v, torch.Tensor) for v in variables.values()):
        raise ConversionError("not a state dict of tensors")
    return variables


def edsr(variables: dict) -> dict[str, torch.Tensor]:
    """EDSR-PyTorch's EDSR: ``head.0`` becomes ``head``; ``body`` and ``tail`` keep their names."""
    state = _state_dict(variables)
    _mean_shift_is_div2k(state)
    return _on_unit_range(_rename(state, [(r"^head\.0\.", "head.")]))


def mdsr(variables: dict) -> dict[str, torch.Tensor]:
    """EDSR-PyTorch's MDSR: the per-scale lists ``pre_process.{0,1,2}`` and ``upsample.{0,1,2}`` are
    srlib's dicts keyed by scale; ``head.0`` and ``tail.0`` are single layers in srlib."""
    state = _state_dict(variables)
    _mean_shift_is_div2k(state)
    scale_of = {"0": "2", "1": "3", "2": "4"}
    rules = [(r"^head\.0\.", "head."), (r"^tail\.0\.", "tail."),
             (r"^(pre_process|upsample)\.([012])\.", lambda m: f"{m.group(1)}.{scale_of[m.group(2)]}.")]
    return _on_unit_range(_rename(state, rules))


def drn(variables: dict) -> dict[str, torch.Tensor]:
    """DRN's primal network. Its down blocks' ``dual_module.0.0`` and ``dual_module.1`` are srlib's
    ``0`` and ``2``, ``up_blocks`` is ``up``, ``tail`` is ``tails`` and the channel attention's
    ``conv_du`` is ``weights``. The attention ends in a sigmoid, which does not commute with the
    change of range: its first 1x1 convolution takes features 255 times smaller, so its weight is
    multiplied by 255 and its bias kept, and the second one is copied unchanged."""
    state = _state_dict(variables)
    _mean_shift_is_div2k(state)
    renamed = _rename(state, [(r"^down\.(\d+)\.dual_module\.0\.0\.", r"down.\1.0."),
                              (r"^down\.(\d+)\.dual_module\.1\.", r"down.\1.2."),
                              (r"^up_blocks\.", "up."), (r"\.conv_du\.", ".weights."), (r"^tail\.", "tails.")])
    out = {}
    for key, value in renamed.items():
        value = value.float()
        if ".weights." in key:  # channel attention: inside the sigmoid, on the scale of the features
            out[key] = value * 255 if key.endswith(".weights.0.weight") else value
        else:
            out[key] = value / 255 if key.endswith(".bias") else value
    return out
