"""What each lab's budgets cost on a GPU, by count: MACs of training and evaluation, and T4 minutes.

Every lab notebook is executed from a temporary folder with ``SRLIB_BUDGET`` set to each budget,
``SRLIB_MAX_STEPS`` (default 2) and a cost ledger (:mod:`srlib.ledger`): its trainings stop after
two steps, but each records the multiply-accumulates of one step and one validation and how many
it was asked for, and every evaluation records its own. The whole budget's work is then

    training FLOPs = 2 x 3 x (MACs of one step's forward) x steps   (backward ~ twice the forward)
    evaluation FLOPs = 2 x (MACs of the validations and evaluations)

and its time on an NVIDIA T4 is estimated at a sustained ``--tflops`` (default 10: mixed precision,
well below the card's 65 TFLOPS peak, which convolutions of 32 to 256 channels do not reach) plus
``--step-ms`` (default 3) of fixed cost per optimizer step (launches, the optimizer, the loader).
Not counted: element-wise layers, the bicubic resizes inside losses, building the data sets on the
CPU. These are estimates until measured on a GPU: there, run a lab with ``SRLIB_BUDGET=gpu`` and
compare its wall time with the table.

    python benchmarks/budgets.py                     # all labs, quick, gpu and paper (T91 + BSD200 present)
    python benchmarks/budgets.py --only edsr --budgets gpu
    python benchmarks/budgets.py --write             # also store the estimates the labs' budget tables show

Use the full training data (``SRLIB_DATA`` with T91 and BSD200): the labs' data, and so their patch
sizes, depend on it. The stored table is ``srlib/budget_costs.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.run_notebooks import execute, read, toc_notebooks  # noqa: E402
from srlib.budget import BUDGET_NAMES, COSTS_FILE  # noqa: E402
from srlib.files import write_json  # noqa: E402

# The notebooks that train under a budget: every paper's lab, and the training chapter.
LABS = [path for path in toc_notebooks(ROOT) if "get_budget(" in path.read_text(encoding="utf-8")]
TFLOPS, STEP_MS = 10.0, 3.0
# Trainings whose steps a lab decides with a clock, by lab and progress label: the FSRCNN lab gives
# SRCNN the steps that fit FSRCNN's training time on the machine at hand. Their cost is counted
# like any other, and also apart ("clocked"), since it differs from one machine to the next.
CLOCKED = {"fsrcnn": {"srcnn"}}


def lab_name(notebook: Path) -> str:
    """The key of a notebook in the costs file: its chapter's folder ("edsr"), or its name ("training")."""
    return notebook.parent.name if notebook.name == "lab.ipynb" else notebook.stem


def run_lab(notebook: Path, budget: str, max_steps: int = 2, timeout: int = 3600) -> list[dict]:
    """Execute ``notebook`` (relative to the repository) at ``budget``, trainings capped; return its ledger."""
    with tempfile.TemporaryDirectory(prefix=f"srbook-{lab_name(notebook)}-{budget}-") as work:
        copy = Path(work) / notebook.name
        shutil.copy(ROOT / notebook, copy)
        ledger = Path(work) / "ledger.jsonl"
        saved = {k: os.environ.get(k) for k in ("SRLIB_BUDGET", "SRLIB_MAX_STEPS", "SRLIB_COST_LEDGER")}
        os.environ.update(SRLIB_BUDGET=budget, SRLIB_MAX_STEPS=str(max_steps), SRLIB_COST_LEDGER=str(ledger))
        try:  # the kernel inherits this environment
            execute(read(copy), copy, timeout, "python3")
        finally:
            for key, value in saved.items():
                os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
        return [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []


def training(trainings: list[dict]) -> dict:
    """Training MACs (a step's backward costs about two forwards) and optimizer steps of ledger entries."""
    return dict(train_macs=sum(3 * e["step_macs"] * e["steps"] for e in trainings if e["step_macs"]),
                steps=sum(e["steps"] for e in trainings))


def costs(entries: list[dict], tflops: float = TFLOPS, step_ms: float = STEP_MS, lab: str = "") -> dict:
    """Totals of a lab's ledger: training and evaluation MACs, steps, and estimated T4 minutes; for
    ``lab``'s clocked trainings (:data:`CLOCKED`), their training MACs and steps apart as well."""
    trainings = [e for e in entries if e["kind"] == "train"]
    row = training(trainings)
    row["eval_macs"] = sum(e["validation_macs"] * e["validations"] for e in trainings)
    row["eval_macs"] += sum(e["macs"] for e in entries if e["kind"] == "evaluate")
    flops = 2 * (row["train_macs"] + row["eval_macs"])
    row.update(trainings=len(trainings),
               t4_minutes=round((flops / (tflops * 1e12) + row["steps"] * step_ms / 1e3) / 60, 1))
    clocked = [e for e in trainings if e.get("desc") in CLOCKED.get(lab, ())]
    if clocked:
        row["clocked"] = training(clocked)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="labs whose folder name is this (repeatable)")
    parser.add_argument("--budgets", nargs="+", default=list(BUDGET_NAMES), choices=BUDGET_NAMES)
    parser.add_argument("--max-steps", type=int, default=2, help="steps each training takes (default 2)")
    parser.add_argument("--tflops", type=float, default=TFLOPS, help="sustained T4 throughput assumed (default 10)")
    parser.add_argument("--step-ms", type=float, default=STEP_MS, help="fixed cost per step, ms (default 3)")
    parser.add_argument("--write", action="store_true", help=f"store the estimates in {COSTS_FILE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    labs = [p for p in LABS if not args.only or lab_name(p) in args.only]
    if not labs:
        print(f"no lab named {args.only}; labs: {', '.join(lab_name(p) for p in LABS)}", file=sys.stderr)
        return 2
    stored = json.loads(COSTS_FILE.read_text()) if COSTS_FILE.exists() else {"labs": {}}
    print(f"{'lab':<10} {'budget':<6} {'trainings':>9} {'steps':>11} {'train TMAC':>11} {'eval TMAC':>10} "
          f"{'T4 min':>7} {'CPU s':>6}")
    for notebook in labs:
        for budget in args.budgets:
            start = time.perf_counter()
            row = costs(run_lab(notebook, budget, args.max_steps), args.tflops, args.step_ms, lab_name(notebook))
            stored["labs"].setdefault(lab_name(notebook), {})[budget] = row
            if args.write:  # row by row: a long run that stops keeps what it measured
                stored.update(tflops=args.tflops, step_ms=args.step_ms,
                              command="python benchmarks/budgets.py --write (T91 and BSD200 present)")
                write_json(COSTS_FILE, stored)
            print(f"{lab_name(notebook):<10} {budget:<6} {row['trainings']:>9} {row['steps']:>11,} "
                  f"{row['train_macs'] / 1e12:>11.1f} {row['eval_macs'] / 1e12:>10.2f} {row['t4_minutes']:>7.1f} "
                  f"{time.perf_counter() - start:>6.0f}", flush=True)
    if args.write:
        print(f"stored in {COSTS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
