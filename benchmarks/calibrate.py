"""How far can the labs' training claims be trusted? Each claim, over several seeds.

    python benchmarks/calibrate.py                  # every lab, seeds 0-4
    python benchmarks/calibrate.py srcnn --seeds 8

A lab trains for a minute with seed 0 and draws a conclusion ("9-5-5 beats 9-1-5 by 0.3 dB").
One seed is an anecdote: this script runs each lab's claim experiment exactly as the lab does
at the quick budget (same data, network, optimiser, steps; only the seed changes: initial
weights, patches and their order) and prints, per measured quantity, the mean, the standard
deviation and the range over the seeds. The labs quote these figures and assert their own
claim with a margin the spread justifies. Results are also written to
``benchmarks/results/calibration.json``.

Each lab's experiment is one file in ``benchmarks/calibration/``: ``experiment(seed,
train_images, test)`` returns the measured quantities, and an optional ``prepare(train_images)``
measures, once, what every seed shares (for example a step count for equal CPU time).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("srlib") is None:  # running from a checkout without installing
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "calibration"))

from srlib.data import sample_images  # noqa: E402
from srlib.files import write_atomically  # noqa: E402

RESULTS = HERE / "results" / "calibration.json"
LABS = ["srcnn", "fsrcnn", "espcn", "vdsr", "drcn", "drrn", "lapsrn", "edsr", "drn"]


def available_labs() -> list[str]:
    return [lab for lab in LABS if (HERE / "calibration" / f"{lab}.py").is_file()]


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        summary[key] = dict(mean=round(statistics.mean(values), 4), sd=round(statistics.stdev(values), 4),
                            min=round(min(values), 4), max=round(max(values), 4),
                            seeds=[round(v, 4) for v in values])
    return summary


def main() -> int:
    labs = available_labs()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", choices=[[], *labs], metavar="LAB", help=f"{', '.join(labs)} (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two runs")
    train, test = sample_images("train"), sample_images("test")
    for lab in args.labs or labs:
        module = importlib.import_module(lab)
        shared = module.prepare(train) if hasattr(module, "prepare") else {}
        runs = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            runs.append(module.experiment(seed, train, test, **shared))
            print(f"{lab} seed {seed}: " + ", ".join(f"{k} {v:+.3f}" for k, v in runs[-1].items())
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
        summary = summarise(runs)
        print(f"\n{lab}: {args.seeds} seeds (quick budget, embedded photographs, held-out test photographs)")
        for key, s in summary.items():
            print(f"  {key:<44} {s['mean']:+.2f} ± {s['sd']:.2f}  (range {s['min']:+.2f} .. {s['max']:+.2f})")
        print()
        # Read again just before writing: another lab's calibration may have finished meanwhile.
        report = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        report[lab] = dict(summary, **shared, torch_version=torch.__version__)
        RESULTS.parent.mkdir(exist_ok=True)
        text = json.dumps(report, indent=1) + "\n"
        write_atomically(RESULTS, lambda tmp: Path(tmp).write_text(text))
    print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
