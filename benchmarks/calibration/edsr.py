"""EDSR lab: batch normalisation, residual scaling, L1 against L2, and x2 pre-training, at equal steps."""
from __future__ import annotations

import statistics

import torch.nn.functional as F

from srlib.data import PatchDataset, center_crops, sample_images
from srlib.device import seed_everything
from srlib.evaluate import evaluate
from srlib.models import build, spec
from srlib.models.common import copy_matching_weights
from srlib.train import fit

SCALE = 4  # the lab works at x4, the scale of its reference models
# The lab's quick runs: EDSR "quick" (4 blocks x 32 filters), 200 steps of 16 48x48 HR patches (12x12 LR).
SETTINGS = dict(steps=200, batch_size=16, lr=2e-3, lr_schedule="cosine", eval_every=50)
# Residual scaling: 120 steps of 16 32x32 HR patches at a constant rate of 5e-3, 4 blocks of 32 or 64 filters.
SCALING = dict(steps=120, batch_size=16, lr=5e-3)
SCALING_VARIANTS = {  # label -> constructor overrides of the "quick" size
    "32 filters, no scaling": dict(n_feats=32, res_scale=1.0),
    "64 filters, no scaling": dict(n_feats=64, res_scale=1.0),
    "64 filters, scaling 0.1": dict(n_feats=64, res_scale=0.1),
}


def l2_loss(model, net_input, hr):
    """The mean squared error, in place of EDSR's L1."""
    return F.mse_loss(model(net_input), hr)


def count_spikes(losses: list[float], window: int = 10, factor: float = 2.0) -> int:
    """Steps whose loss exceeds ``factor`` times the median of the ``window`` steps before it."""
    return sum(losses[i] > factor * statistics.median(losses[i - window:i]) for i in range(window, len(losses)))


def train(data, seed: int, scale: int = SCALE, init=None, build_kwargs=None, **fit_kwargs):
    """Seed, build (optionally copy the matching weights of ``init``) and train the quick EDSR as the lab does."""
    seed_everything(seed)
    model = build("edsr", scale, size="quick", **(build_kwargs or {}))
    if init is not None:
        copy_matching_weights(model, init)
    fit_kwargs.setdefault("loss_fn", spec("edsr").loss)
    history = fit(model, data, seed=seed, progress=False, device="cpu", **fit_kwargs)
    return model, history


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    val_images = center_crops(sample_images("val"), 256)

    def validate(m):
        return evaluate(m, val_images, SCALE).mean_psnr

    def run(data, **kwargs):
        return train(data, seed, **kwargs)

    data = PatchDataset(train_images, SCALE, patch_size=48, channels="rgb", seed=seed)
    x2_data = PatchDataset(train_images, 2, patch_size=24, channels="rgb", seed=seed)  # the same 12x12 LR patches
    histories = {}
    models = {}
    variants = {"L1": {}, "BN": dict(build_kwargs=dict(batch_norm=True)), "L2": dict(loss_fn=l2_loss)}
    for label, kwargs in variants.items():
        models[label], histories[label] = run(data, validate=validate, **kwargs, **SETTINGS)
    x2_model, _ = run(x2_data, scale=2, **SETTINGS)
    models["x2 init"], histories["x2 init"] = run(data, init=x2_model, validate=validate, **SETTINGS)
    psnr = {label: evaluate(m, test, SCALE).mean_psnr for label, m in models.items()}
    result = {"EDSR quick gain over bicubic (dB)": evaluate(models["L1"], test, SCALE).gain,
              "no BN minus BN (dB)": psnr["L1"] - psnr["BN"],
              "L1 minus L2 (dB)": psnr["L1"] - psnr["L2"],
              "x2 init minus scratch, validation at step 50 (dB)":
                  histories["x2 init"].val[0][1] - histories["L1"].val[0][1],
              "x2 init minus scratch, held-out after 200 steps (dB)": psnr["x2 init"] - psnr["L1"]}
    scaling_data = PatchDataset(train_images, SCALE, patch_size=32, channels="rgb", seed=seed)
    for label, overrides in SCALING_VARIANTS.items():
        try:
            _, history = run(scaling_data, build_kwargs=overrides, **SCALING)
            spikes = count_spikes(history.loss)
        except FloatingPointError:  # diverged to NaN: counted as a spike at every remaining step
            spikes = SCALING["steps"]
        result[f"loss spikes, {label}"] = spikes
    return result
