"""Which learning rate for a longer run? A short search on the validation photograph.

    SRLIB_DATA=/path/to/data OMP_NUM_THREADS=1 python benchmarks/lr_search.py edsr-x4 vdsr-x4

The six-minute x4 references use rates chosen by hand. Before a network is trained for 45 planned
minutes (7.5 times the six-minute steps), its rate is searched: the six-minute recipe is trained at
half, once and twice its rate for a fifth of the longer run (1.5 times the six-minute steps, a full
cosine schedule each), and the rate with the best PSNR on the validation crop (the central 256 x 256
of the validation photograph, which no test reads; never Set5 or the test photographs) is the
longer run's. Each run is checkpointed under ``checkpoints/lr_search/`` (an interrupted search
resumes) and its result is kept in ``srlib/weights/lr_search.json``, which the longer reference's
provenance quotes.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from dataclasses import replace
from pathlib import Path

if importlib.util.find_spec("srlib") is None:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srlib.data import center_crops, sample_images  # noqa: E402
from srlib.evaluate import evaluate  # noqa: E402
from srlib.files import write_json  # noqa: E402
from srlib.recipe import train  # noqa: E402
from srlib.reference import LR_SEARCH_FILE, RECIPES, lr_search_results, source_commit  # noqa: E402

FACTORS = (0.5, 1.0, 2.0)  # times the six-minute recipe's rate
LENGTH = 1.5  # times the six-minute recipe's steps: a fifth of the 45-minute run


def search(name: str, checkpoints: Path) -> dict:
    base = RECIPES[name]
    validation = center_crops(sample_images("val"), 256)
    data = base.dataset()  # the same patches for every rate
    runs = []
    for factor in FACTORS:
        recipe = replace(base, lr=base.lr * factor, steps=round(base.steps * LENGTH))
        start = time.perf_counter()
        _, history = train(recipe, data=data, device="cpu", progress=sys.stderr.isatty(),
                           validate=lambda m: evaluate(m, validation, recipe.scale).mean_psnr,
                           eval_every=max(1, recipe.steps // 10), checkpoint=checkpoints / f"{name}-lr{recipe.lr:g}.pt",
                           desc=f"{name} rate {recipe.lr:g}")
        runs.append(dict(lr=recipe.lr, steps=recipe.steps, validation_psnr=round(history.val[-1][1], 4),
                         curve=[[step, round(psnr, 4)] for step, psnr in history.val]))
        print(f"{name}: rate {recipe.lr:g}, {recipe.steps:,} steps: validation {history.val[-1][1]:.2f} dB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    best = max(runs, key=lambda run: run["validation_psnr"])
    return dict(runs=runs, chosen_lr=best["lr"], validation="central 256 x 256 of the validation photograph",
                command=f"python benchmarks/lr_search.py {name}", commit=source_commit())


def main(argv: list[str] | None = None) -> int:
    x4 = [name for name, recipe in RECIPES.items() if recipe.scale == 4 and not recipe.scales]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=x4, metavar="NAME", help=", ".join(x4))
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints/lr_search"))
    args = parser.parse_args(argv)
    for name in args.names:
        results = lr_search_results()
        results[name] = search(name, args.checkpoints)
        write_json(LR_SEARCH_FILE, results)
        print(f"{name}: chosen rate {results[name]['chosen_lr']:g} (written to {LR_SEARCH_FILE.name})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
