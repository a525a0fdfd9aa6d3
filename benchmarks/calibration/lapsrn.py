"""LapSRN lab: the Charbonnier loss against the L2 loss at equal steps (x4, both on every pyramid level)."""
from __future__ import annotations

from functools import partial

from srlib.data import PatchDataset
from srlib.device import seed_everything
from srlib.evaluate import evaluate
from srlib.models import build
from srlib.models.lapsrn import loss
from srlib.train import fit

SCALE = 4  # LapSRN's pyramid doubles per level: x4 is two levels (the lab's scale, not common.SCALE)
# The lab's quick runs: LapSRN "quick" (d = 3, 32 filters per level), 16 HR patches of 48x48, Adam 1e-3 cosine.
SETTINGS = dict(steps=300, batch_size=16, lr=1e-3, lr_schedule="cosine")
PATCH_SIZE = 48
PENALTIES = ("charbonnier", "l2")


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    """Two identical networks (same seed, same patches in the same order), one per penalty."""
    data = PatchDataset(train_images, SCALE, patch_size=PATCH_SIZE, channels="y", seed=seed)
    results = {}
    for penalty in PENALTIES:
        seed_everything(seed)  # the same initial weights for both, as in the lab
        model = build("lapsrn", SCALE, size="quick")
        fit(model, data, loss_fn=partial(loss, penalty=penalty), seed=seed, progress=False, device="cpu", **SETTINGS)
        results[penalty] = evaluate(model, test, SCALE)
    return {"Charbonnier gain over bicubic (dB)": results["charbonnier"].gain,
            "L2 gain over bicubic (dB)": results["l2"].gain,
            "Charbonnier minus L2 (dB)": results["charbonnier"].mean_psnr - results["l2"].mean_psnr}
