"""DRN lab: the dual loss at equal steps, and adapting to a new degradation from LR images alone."""
from __future__ import annotations

import copy

from srlib.data import PatchDataset
from srlib.device import seed_everything
from srlib.evaluate import evaluate
from srlib.models import build
from srlib.models.drn import loss, semi_supervised_loss
from srlib.train import fit

SCALE = 4  # DRN is an x4 / x8 model
PATCH_SIZE, BATCH = 32, 16
PRETRAIN = dict(steps=360, lr=2e-3, lr_schedule="cosine")  # the lab's quick model, and its lambda = 0 twin
ADAPT = dict(steps=120, lr=1e-3, lr_schedule="cosine")  # every continuation of the quick model
RATIOS = (0.3, 0.7)  # share of unpaired (blur-degraded) LR images in a batch


def no_dual(model, net_input, hr):
    return loss(model, net_input, hr, dual_weight=0.0)


def pretrained(data, seed: int, loss_fn) -> object:
    seed_everything(seed)
    model = build("drn", SCALE, size="quick")
    fit(model, data, loss_fn=loss_fn, batch_size=BATCH, seed=seed, progress=False, device="cpu", **PRETRAIN)
    return model


def continued(model, data, seed: int, loss_fn, batch_size: int = BATCH):
    model = copy.deepcopy(model)
    fit(model, data, loss_fn=loss_fn, batch_size=batch_size, seed=seed, progress=False, device="cpu", **ADAPT)
    return model


def experiment(seed: int, train_images: dict, test: dict) -> dict:
    """Two networks from scratch (lambda 0.1 and 0), then four continuations of the first."""
    paired = PatchDataset(train_images, SCALE, patch_size=PATCH_SIZE, channels="rgb", seed=seed)
    blurred = PatchDataset(train_images, SCALE, patch_size=PATCH_SIZE, channels="rgb", degradation="blur",
                           seed=seed + 100)  # its HR halves are used by the oracle only
    model = pretrained(paired, seed, loss)
    twin = pretrained(paired, seed, no_dual)
    bicubic = evaluate(model, test, SCALE)
    out = {"gain over bicubic (dB)": bicubic.gain,
           "dual (lambda 0.1) minus no dual (dB)": bicubic.mean_psnr - evaluate(twin, test, SCALE).mean_psnr,
           "blur gain over bicubic before adaptation (dB)": evaluate(model, test, SCALE, degradation="blur").gain}
    base = continued(model, paired, seed, loss)  # paired bicubic data only, same steps
    base_blur = evaluate(base, test, SCALE, degradation="blur").mean_psnr
    base_bicubic = evaluate(base, test, SCALE).mean_psnr
    for ratio in RATIOS:
        n_unpaired = round(ratio * BATCH)
        adapted = continued(model, paired, seed, semi_supervised_loss(blurred, ratio, BATCH),
                            batch_size=BATCH - n_unpaired)
        out[f"blur: ratio {ratio} minus paired only (dB)"] = (
            evaluate(adapted, test, SCALE, degradation="blur").mean_psnr - base_blur)
        out[f"bicubic: ratio {ratio} minus paired only (dB)"] = evaluate(adapted, test, SCALE).mean_psnr - base_bicubic
    oracle = continued(model, blurred, seed, loss)  # what paired blur data (HR known) would give
    out["blur: oracle minus paired only (dB)"] = evaluate(oracle, test, SCALE, degradation="blur").mean_psnr - base_blur
    return out
