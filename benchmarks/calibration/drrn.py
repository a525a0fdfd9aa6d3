"""DRRN lab: more recursions at the same parameters, and multi-path against chained or no local residuals."""
from __future__ import annotations

from common import SCALE, train

from srlib.data import PatchDataset
from srlib.evaluate import evaluate

# The lab's quick runs: DRRN "quick" (B1U4, 32 filters) and its variants, all at equal steps.
SETTINGS = dict(steps=300, batch_size=16, lr=2e-3, lr_schedule="cosine")
PATCH_SIZE = 24
VARIANTS = {  # label -> constructor overrides of the "quick" size
    "B1U4": {},
    "B1U1": dict(units=1),
    "B1U4 chain": dict(local_residual="chain"),
    "B1U4 no local residual": dict(local_residual="none"),
}


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    """Four networks with the same convolution parameters, 300 steps of 16 24x24 patches, Adam 2e-3, cosine."""
    data = PatchDataset(train_images, SCALE, patch_size=PATCH_SIZE, channels="y", upsampled=True, seed=seed)
    psnr, gain = {}, 0.0
    for label, overrides in VARIANTS.items():
        result = evaluate(train("drrn", "quick", data, seed, build=overrides, **SETTINGS), test, SCALE)
        psnr[label] = result.mean_psnr
        gain = gain or result.gain  # the first network's: B1U4, the lab's model
    return {"B1U4 gain over bicubic (dB)": gain,
            "B1U4 minus B1U1 (dB)": psnr["B1U4"] - psnr["B1U1"],
            "multi-path minus chain (dB)": psnr["B1U4"] - psnr["B1U4 chain"],
            "multi-path minus no local residual (dB)": psnr["B1U4"] - psnr["B1U4 no local residual"]}
