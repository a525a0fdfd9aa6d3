"""Is the data pipeline ever the bottleneck of a CPU training step?

    python benchmarks/data.py

For each model's quick configuration, times (a) drawing one batch of patches from a
PatchDataset through the DataLoader the training loop uses, and (b) one optimizer step on
that batch, on this machine's CPU. Prints both and their ratio.
"""
import time

import torch
from torch.utils.data import DataLoader

from srlib.data import PatchDataset, sample_images
from srlib.models import build, spec

BATCH, PATCH, SCALE = 16, 48, 4


def per_call(fn, repeats=20):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main():
    images = sample_images("train")
    print(f"batch {BATCH} x {PATCH}px HR patches, x{SCALE} (x4 for DRN, LapSRN), {torch.get_num_threads()} threads")
    print(f"{'model':<8}{'setup':>9}{'batch':>10}{'step':>10}{'batch/step':>12}")
    datasets = {}
    for name in ("srcnn", "fsrcnn", "espcn", "vdsr", "drcn", "drrn", "lapsrn", "edsr", "mdsr", "drn"):
        s = spec(name)
        scale = SCALE if SCALE in s.scales else s.scales[-1]
        key = (s.input, s.channels, scale)
        start = time.perf_counter()
        if key not in datasets:
            datasets[key] = PatchDataset(images, scale, PATCH, channels="y" if s.channels == 1 else "rgb",
                                         upsampled=s.input == "upsampled")
        setup = time.perf_counter() - start
        batches = iter(DataLoader(datasets[key], batch_size=BATCH, shuffle=True))
        batch_time = per_call(lambda: next(batches))
        model = build(name, scale, size="quick")
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        x, y = next(batches)

        def step():
            opt.zero_grad()
            s.loss(model, x, y).backward()
            opt.step()

        step_time = per_call(step, repeats=5)
        print(f"{name:<8}{setup:>8.2f}s{batch_time * 1e3:>8.1f}ms{step_time * 1e3:>8.0f}ms"
              f"{batch_time / step_time:>11.1%}")


if __name__ == "__main__":
    main()
