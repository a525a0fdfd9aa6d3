"""FSRCNN lab: FSRCNN's gain, against SRCNN for the same CPU time, and its move to x2."""
from __future__ import annotations

import copy
import time

from common import SCALE, train

from srlib.data import PatchDataset
from srlib.device import seed_everything
from srlib.evaluate import evaluate
from srlib.models import build
from srlib.models.fsrcnn import replace_deconvolution
from srlib.train import fit


def prepare(train_images: dict) -> dict:
    """SRCNN steps that take as long as FSRCNN's 1,500 on this machine (as the FSRCNN lab measures)."""
    per_step = {}
    for name, upsampled in (("fsrcnn", False), ("srcnn", True)):
        data = PatchDataset(train_images, SCALE, patch_size=48, channels="y", upsampled=upsampled)
        model = build(name, SCALE)
        fit(model, data, steps=2, batch_size=16, progress=False, device="cpu")
        start = time.perf_counter()
        fit(model, data, steps=10, batch_size=16, progress=False, device="cpu")
        per_step[name] = (time.perf_counter() - start) / 10
    steps = max(1, round(1_500 * per_step["fsrcnn"] / per_step["srcnn"]))
    print(f"FSRCNN lab: SRCNN gets {steps} steps for FSRCNN's 1,500 on this CPU")
    return dict(srcnn_steps=steps)


def experiment(seed: int, train_images: dict, test: dict, srcnn_steps: int) -> dict:
    """1,500 steps of 16 48x48 patches at 5e-3; SRCNN 9-5-5 for the same CPU time; then the x3
    network moved to x2 by fine-tuning its deconvolution alone for 300 steps."""
    data = PatchDataset(train_images, SCALE, patch_size=48, channels="y", seed=seed)
    model = train("fsrcnn", "paper", data, seed, steps=1_500, batch_size=16, lr=5e-3, lr_schedule="cosine")
    result = evaluate(model, test, SCALE)
    srcnn_data = PatchDataset(train_images, SCALE, patch_size=48, channels="y", upsampled=True, seed=seed)
    srcnn_model = train("srcnn", "paper", srcnn_data, seed, steps=srcnn_steps, batch_size=16, lr=1e-3,
                        lr_schedule="cosine")
    model_x2 = replace_deconvolution(copy.deepcopy(model), 2)
    data_x2 = PatchDataset(train_images, 2, patch_size=48, channels="y", seed=seed)
    seed_everything(seed)
    fit(model_x2, data_x2, steps=300, lr=1e-2, lr_schedule="cosine", batch_size=16, seed=seed, progress=False,
        device="cpu")
    return {"FSRCNN gain over bicubic (dB)": result.gain,
            "FSRCNN minus SRCNN at equal time (dB)": result.mean_psnr - evaluate(srcnn_model, test, SCALE).mean_psnr,
            "x2 transfer gain over bicubic (dB)": evaluate(model_x2, test, 2).gain}
