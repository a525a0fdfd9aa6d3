"""VDSR lab: residual against non-residual learning, SGD at rate 0.1 with and without adjustable clipping,
and depth at equal steps."""
from __future__ import annotations

from common import SCALE, train

from srlib.data import PatchDataset
from srlib.evaluate import evaluate

DEPTH, WIDTH = 10, 16  # the lab's quick network: the paper's 3x3 layers, fewer and narrower
STEPS, BATCH, PATCH = 300, 8, 41  # the paper's 41x41 patches
TAU = 5e-4  # the clipping threshold tau: each gradient entry is clipped to [-tau / rate, tau / rate]
SGD = dict(optimizer="sgd", lr=0.1, lr_schedule="cosine", steps=STEPS, batch_size=BATCH)
CLIPPED = dict(SGD, clip_grad=TAU, clip_mode="adjustable")
SHALLOW = (3, 5)  # the depths compared with DEPTH


def vdsr(data, seed: int, depth: int = DEPTH, **kwargs):
    """One quick VDSR trained as the lab trains it: the paper's summed loss, SGD at 0.1 with clipping."""
    build = dict(depth=depth, n_feats=WIDTH, **kwargs.pop("build", {}))
    return train("vdsr", "quick", data, seed, build=build, **{**CLIPPED, **kwargs})


def divergence_step(data, seed: int) -> float:
    """The step at which SGD at 0.1 without clipping produces a non-finite loss (STEPS + 1: it never did)."""
    try:
        vdsr(data, seed, clip_grad=None)
    except FloatingPointError as error:
        return float(str(error).split(" at step ")[1].split(";")[0])
    return float(STEPS + 1)


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    data = PatchDataset(train_images, SCALE, patch_size=PATCH, channels="y", upsampled=True, seed=seed)
    residual = vdsr(data, seed)
    plain = vdsr(data, seed, build=dict(residual=False))
    result, plain_result = evaluate(residual, test, SCALE), evaluate(plain, test, SCALE)
    shallow = {d: evaluate(vdsr(data, seed, depth=d), test, SCALE) for d in SHALLOW}
    out = {
        "residual gain over bicubic (dB)": result.gain,
        "non-residual gain over bicubic (dB)": plain_result.gain,
        "residual minus non-residual (dB)": result.mean_psnr - plain_result.mean_psnr,
        "no clipping: loss not finite at step": divergence_step(data, seed),
    }
    for d in SHALLOW:
        out[f"depth {d} gain over bicubic (dB)"] = shallow[d].gain
    out[f"depth {DEPTH} minus depth {SHALLOW[-1]} (dB)"] = result.mean_psnr - shallow[SHALLOW[-1]].mean_psnr
    out[f"depth {SHALLOW[-1]} minus depth {SHALLOW[0]} (dB)"] = (shallow[SHALLOW[-1]].mean_psnr
                                                                 - shallow[SHALLOW[0]].mean_psnr)
    return out
