"""The equal-compute ranking: what each of the book's networks reaches at x4 in the same CPU time.

    python benchmarks/equal_compute.py measure        # time one training step of every x4 recipe
    SRLIB_DATA=/path/to/data python scripts/train_reference.py srcnn-x4 fsrcnn-x4 ... drn-x4 --overwrite
    SRLIB_DATA=/path/to/data python scripts/train_reference.py srcnn-x4 ... --seed 1 --out-dir checkpoints/seed1
    python benchmarks/equal_compute.py report --repeats checkpoints/seed1

Papers compare networks after days of GPU training, each on its own data and schedule. A
reader with a laptop asks something else: given the same few minutes of CPU, which network
should I train? The x4 reference models answer it. Every one is trained on the same data
(T91 + BSD200), with the same 16 HR patches of 48x48 pixels per step, Adam and a cosine rate,
for the same *planned* CPU time: six minutes of one thread. The plan is made by ``measure``:
it builds each recipe's model, times ``--steps`` training steps after a warm-up on one thread
and prints how many steps fit the budget; those counts are written into
:data:`srlib.reference.RECIPES` by hand (rounded), so that retraining a reference is
repeatable step for step.

``report`` reads what the trainings recorded (steps, seconds, threads, Set5 and held-out
PSNR/SSIM) and counts parameters and MACs, then writes ``srlib/weights/equal_compute.json``
(beside the weights it describes, so that an installed srlib has it: the book's closing chapter
plots it) with the machine it ran on, and prints the ranking. The seconds are those of the actual runs:
on a machine that was busy with other work they exceed the plan, and the file says so.
``--repeats DIR`` adds the figures of runs of the same recipes with other seeds (their
provenance files in ``DIR``), so that the ranking shows how much a run depends on its seed.
A model whose run is not in ``DIR`` (its file was made on another machine, and the weights of
such runs are not shipped) keeps the figures the stored ranking already records for that seed,
so that retraining some references does not drop the others' repeats.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

if importlib.util.find_spec("srlib") is None:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srlib.files import write_json  # noqa: E402
from srlib.recipe import train  # noqa: E402
from srlib.reference import RECIPES, WEIGHTS_DIR, reference_info, training_costs  # noqa: E402

SCALE = 4
BUDGET_SECONDS = 360  # six minutes of one thread per model
OUTPUT_SIDE = 256  # MACs are counted for a 256x256 output
RESULTS = WEIGHTS_DIR / "equal_compute.json"


def x4_references() -> list[str]:
    return [name for name, recipe in RECIPES.items() if recipe.scale == SCALE]


def step_seconds(name: str, steps: int = 8) -> float:
    """Seconds per training step of reference recipe ``name`` on this machine (after 2 warm-up steps).

    The embedded photographs stand in for the training set: a step's cost does not depend on
    which pixels the patches hold."""
    recipe = replace(RECIPES[name], data=("embedded",), lr_schedule=None)
    model, data = recipe.build(), recipe.dataset()
    common = dict(progress=False, device="cpu")
    train(replace(recipe, steps=2), model=model, data=data, **common)
    start = time.perf_counter()
    train(replace(recipe, steps=steps), model=model, data=data, resume=False, **common)
    return (time.perf_counter() - start) / steps


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=cpu, logical_cores=os.cpu_count(), python=platform.python_version(),
                torch=torch.__version__, system=platform.platform())


def measure(names: list[str], steps: int) -> None:
    torch.set_num_threads(1)
    print(f"{'reference':<11} {'ms/step':>8} {'steps in budget':>16} {'steps in recipe':>16}")
    for name in names:
        seconds = step_seconds(name, steps)
        print(f"{name:<11} {seconds * 1e3:8.0f} {BUDGET_SECONDS / seconds:16,.0f} {RECIPES[name].steps:16,}",
              flush=True)


def ranking(names: list[str]) -> list[dict]:
    """One row per x4 reference (recorded provenance and figures, counted parameters and MACs), best first."""
    costs = training_costs(names, output_size=OUTPUT_SIDE)  # parameters and MACs, each model loaded once
    rows = []
    for name in names:
        info, cost = reference_info(name), costs[name]
        recipe = info["recipe"]
        set5, held_out = info["measured"].get("Set5"), info["measured"]["embedded"]
        rows.append(dict(
            name=name, paper=info["paper"], size=recipe["size"], parameters=cost.parameters,
            macs_256=round(cost.macs_per_pixel * OUTPUT_SIDE**2),
            steps=recipe["steps"], batch_size=recipe["batch_size"], patch_size=recipe["patch_size"], lr=recipe["lr"],
            scales=recipe.get("scales"), seconds=info["seconds"], threads=info["threads"], commit=info["commit"],
            set5_psnr=set5["psnr"] if set5 else None, set5_ssim=set5["ssim"] if set5 else None,
            held_out_psnr=held_out["psnr"], held_out_ssim=held_out["ssim"],
            bicubic_set5_psnr=set5["bicubic_psnr"] if set5 else None, bicubic_held_out_psnr=held_out["bicubic_psnr"]))
    key = "set5_psnr" if all(r["set5_psnr"] is not None for r in rows) else "held_out_psnr"
    return sorted(rows, key=lambda r: -r[key])


def _stored_repeats() -> dict[str, list[dict]]:
    """The runs with other seeds that the stored ranking records, by reference name."""
    if not RESULTS.is_file():
        return {}
    return {row["name"]: row.get("other_seeds", []) for row in json.loads(RESULTS.read_text())["models"]}


def repeats(rows: list[dict], folders: list[Path]) -> None:
    """Add to each row the recorded figures of runs of its recipe with other seeds, found in ``folders``;
    a run missing there keeps its figures from the stored ranking."""
    stored = _stored_repeats() if folders else {}
    for row in rows:
        row["other_seeds"] = []
        for folder in folders:
            path = Path(folder) / f"{row['name']}.json"
            if not path.is_file():
                row["other_seeds"] += [run for run in stored.get(row["name"], []) if run not in row["other_seeds"]]
                continue
            info = json.loads(path.read_text())
            expected, recorded = json.loads(json.dumps(RECIPES[row["name"]].record())), dict(info["recipe"])
            seed = recorded.pop("seed")  # fields added to Recipe since that run keep their defaults there
            if any(expected.get(k) != v for k, v in recorded.items()) or seed == expected["seed"]:
                raise ValueError(f"{path} is not a run of the {row['name']} recipe with another seed")
            set5 = info["measured"].get("Set5")
            row["other_seeds"].append(dict(seed=seed, set5_psnr=set5["psnr"] if set5 else None,
                                           held_out_psnr=info["measured"]["embedded"]["psnr"],
                                           seconds=info["seconds"], commit=info["commit"]))


def report(names: list[str], repeat_folders: list[Path] = ()) -> dict:
    """:func:`ranking` with the machine and command, saved to :data:`RESULTS`."""
    rows = ranking(names)
    repeats(rows, list(repeat_folders))
    result = dict(
        what="x4 reference models, each trained for the same planned CPU time on the same data",
        budget_seconds_per_model=BUDGET_SECONDS, threads_per_model=1,
        ranked_by="set5_psnr" if rows[0]["set5_psnr"] is not None else "held_out_psnr",
        command="python benchmarks/equal_compute.py report"
                + "".join(f" --repeats {folder}" for folder in repeat_folders),
        machine=machine(),
        saved=time.strftime("%Y-%m-%d", time.gmtime()), models=rows)
    write_json(RESULTS, result)
    return result


def print_ranking(result: dict) -> None:
    print(f"{'rank':>4} {'reference':<11} {'Set5':>6} {'held-out':>8} {'params':>10} {'GMACs':>7} {'steps':>7} "
          f"{'minutes':>7}")
    for rank, r in enumerate(result["models"], 1):
        set5 = f"{r['set5_psnr']:6.2f}" if r["set5_psnr"] is not None else "     -"
        print(f"{rank:4} {r['name']:<11} {set5} {r['held_out_psnr']:8.2f} {r['parameters']:10,} "
              f"{r['macs_256'] / 1e9:7.2f} {r['steps']:7,} {r['seconds'] / 60:7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("measure", "report"))
    parser.add_argument("names", nargs="*", help="x4 references (default: all)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per model (measure)")
    parser.add_argument("--repeats", action="append", default=[], metavar="DIR",
                        help="report: a folder of runs of the same recipes with another seed (repeatable)")
    args = parser.parse_args(argv)
    names = args.names or x4_references()
    unknown = [n for n in names if n not in RECIPES or RECIPES[n].scale != SCALE]
    if unknown:
        parser.error(f"not x4 references: {', '.join(unknown)}; choose from {', '.join(x4_references())}")
    if args.action == "measure":
        measure(names, args.steps)
    else:
        try:
            print_ranking(report(names, args.repeats))
        except (FileNotFoundError, ValueError) as error:
            print(f"equal_compute.py: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
