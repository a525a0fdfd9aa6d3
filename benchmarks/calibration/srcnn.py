"""SRCNN lab: 9-5-5 against 9-1-5 at the quick budget."""
from __future__ import annotations

from common import SCALE, train

from srlib.data import PatchDataset
from srlib.evaluate import evaluate


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    """9-5-5 and 9-1-5, 1,600 steps of 8 33x33 patches, Adam 1e-3 with a cosine decay."""
    data = PatchDataset(train_images, SCALE, patch_size=33, channels="y", upsampled=True, seed=seed)
    kwargs = dict(steps=1_600, batch_size=8, lr=1e-3, lr_schedule="cosine")
    wide = evaluate(train("srcnn", "9-5-5", data, seed, **kwargs), test, SCALE)
    narrow = evaluate(train("srcnn", "9-1-5", data, seed, **kwargs), test, SCALE)
    return {"9-5-5 gain over bicubic (dB)": wide.gain, "9-1-5 gain over bicubic (dB)": narrow.gain,
            "9-5-5 minus 9-1-5 (dB)": wide.mean_psnr - narrow.mean_psnr}
