"""How much does ``fit`` cost on top of the optimizer steps it takes?

    python benchmarks/loop.py
    python benchmarks/loop.py --steps 1000 --repeats 9

Two loops train ESPCN x3 on batches of 16 Y-channel patches of 51x51 HR pixels (17x17 LR):

* bare: the textbook PyTorch loop, Adam on one fixed, pre-made batch; it measures the
  forward, backward and optimizer step and nothing else;
* fit: :func:`srlib.train.fit` with its progress bar on, drawing fresh patches from a
  :class:`srlib.data.PatchDataset` every step.

Their ratio is what the data pipeline and the bookkeeping of ``fit`` cost. The patches come
from T91 and BSD200 (the 291-image training set) when the data root (``SRLIB_DATA``)
holds them, else from the photographs bundled with scikit-image. Each figure is the best
of ``--repeats`` runs after a warm-up; timings depend on whatever else the machine runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

if importlib.util.find_spec("srlib") is None:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srlib.data import PatchDataset, data_root, load_set, sample_images  # noqa: E402
from srlib.models import build, spec  # noqa: E402
from srlib.train import fit  # noqa: E402

MODEL, SCALE, BATCH, PATCH, LR = "espcn", 3, 16, 51, 1e-3


def training_images() -> tuple[str, dict]:
    """T91 + BSD200 from the data root if both are there, else the bundled photographs."""
    if all((data_root() / name).is_dir() for name in ("T91", "BSD200")):
        images = {f"{s}/{k}": v for s in ("T91", "BSD200") for k, v in load_set(s).items()}
        return "T91 + BSD200", images
    return "scikit-image samples", sample_images("train")


def bare_loop(batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> float:
    """Seconds for ``steps`` steps of the plain loop on one fixed batch."""
    torch.manual_seed(0)
    model = build(MODEL, SCALE).train()
    loss_fn = spec(MODEL).loss
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    start = time.perf_counter()
    for _ in range(steps):
        loss = loss_fn(model, *batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # fit reads every loss too (to record it); keep the same synchronisation
    return time.perf_counter() - start


def fit_loop(data: PatchDataset, steps: int) -> float:
    """Seconds for one ``fit`` call of ``steps`` steps, setup included."""
    torch.manual_seed(0)
    model = build(MODEL, SCALE)
    start = time.perf_counter()
    fit(model, data, steps=steps, loss_fn=spec(MODEL).loss, lr=LR, batch_size=BATCH,
        device="cpu", progress=True, desc="fit")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="steps per timed run (fit call: setup included)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each loop; the best counts")
    args = parser.parse_args(argv)

    source, images = training_images()
    start = time.perf_counter()
    data = PatchDataset(images, SCALE, patch_size=PATCH, channels="y")
    setup = time.perf_counter() - start
    batch = data.batch(list(range(BATCH)))  # the bare loop's one fixed batch
    print(f"{MODEL} x{SCALE}, batches of {BATCH} patches of {PATCH}x{PATCH} HR "
          f"({PATCH // SCALE}x{PATCH // SCALE} LR), Y channel, {torch.get_num_threads()} threads; "
          f"{source}: {len(images)} images, PatchDataset built in {setup:.1f} s")

    loops = {"bare loop": lambda n: bare_loop(batch, n), "fit": lambda n: fit_loop(data, n)}
    for run in loops.values():  # warm-up: first calls allocate, load kernels, fill caches
        run(max(10, args.steps // 10))
    # Alternate the two so that a change in machine load hits both alike; keep the best.
    seconds = {name: float("inf") for name in loops}
    for _ in range(args.repeats):
        for name, run in loops.items():
            seconds[name] = min(seconds[name], run(args.steps))
    bare, fit_rate = (args.steps / seconds[name] for name in loops)
    print(f"{'bare loop':<10}{bare:8.1f} steps/s")
    print(f"{'fit':<10}{fit_rate:8.1f} steps/s")
    print(f"{'ratio':<10}{fit_rate / bare:8.0%}")


if __name__ == "__main__":
    main()
