"""ESPCN lab: ESPCN against its HR-space twin at equal steps."""
from __future__ import annotations

from common import SCALE, train

from srlib.data import PatchDataset
from srlib.evaluate import evaluate


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    """ESPCN and its HR-space twin, 1,000 steps of 16 48x48 patches, Adam 3e-3, cosine."""
    kwargs = dict(steps=1_000, batch_size=16, lr=3e-3, lr_schedule="cosine")
    data = PatchDataset(train_images, SCALE, patch_size=48, channels="y", seed=seed)
    twin_data = PatchDataset(train_images, SCALE, patch_size=48, channels="y", upsampled=True, seed=seed)
    lr_space = evaluate(train("espcn", "paper", data, seed, **kwargs), test, SCALE)
    twin = evaluate(train("espcn", "paper", twin_data, seed, build=dict(space="hr"), **kwargs), test, SCALE,
                    upsampled=True, channels="y")
    return {"ESPCN gain over bicubic (dB)": lr_space.gain, "HR twin gain over bicubic (dB)": twin.gain,
            "ESPCN minus HR twin (dB)": lr_space.mean_psnr - twin.mean_psnr}
