"""DRCN lab: recursive supervision and the skip connection, removed one at a time and together, at equal steps."""
from __future__ import annotations

from common import SCALE, train

from srlib.data import PatchDataset
from srlib.evaluate import evaluate

# The lab's four networks: the quick DRCN (16 filters, 8 recursions) and its ablations.
VARIANTS = {
    "DRCN": {},
    "no recursive supervision": dict(recursive_supervision=False),
    "no skip": dict(skip=False),
    "basic model": dict(recursive_supervision=False, skip=False),
}


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    """Each variant, 300 steps of 16 24x24 patches (bicubic-upsampled input), Adam 1e-3 with a cosine decay."""
    data = PatchDataset(train_images, SCALE, patch_size=24, channels="y", upsampled=True, seed=seed)
    kwargs = dict(steps=300, batch_size=16, lr=1e-3, lr_schedule="cosine")
    gains = {name: evaluate(train("drcn", "quick", data, seed, build=dict(options), **kwargs), test, SCALE).gain
             for name, options in VARIANTS.items()}
    result = {f"{name} gain over bicubic (dB)": gain for name, gain in gains.items()}
    result.update({f"DRCN minus {name} (dB)": gains["DRCN"] - gains[name] for name in list(VARIANTS)[1:]})
    return result
