"""How far can the labs' training claims be trusted? Each lab, executed at many seeds and thread counts.

    python benchmarks/calibrate.py fsrcnn                        # seeds 0-9, at 1 and 2 CPU threads
    python benchmarks/calibrate.py fsrcnn --seeds 20 --threads 1
    python benchmarks/calibrate.py fsrcnn --false-failures 20   # 20 new runs checked as a reader's would be
    python benchmarks/calibrate.py --report                      # each lab's false-failure rate, computed

A lab trains for a minute at the quick budget and checks its claims with ``Run.check_claims``
(``srlib/lab.py``). This script executes the lab notebook itself with papermill, setting its
``seed``, ``threads`` and ``claims_file`` parameters; the lab then records what it measured
instead of checking it. Every run is kept in ``checkpoints/calibration/LAB.json`` as soon as it
ends, so an interrupted calibration continues where it stopped (a recorded seed and thread count
is not run again; delete the file after changing the lab). When all are done, the lab's entry
in ``srlib/calibration.json`` is replaced: per claim, the runs, their mean and standard
deviation, and the band the lab asserts (a prediction interval for one new run; see
``srlib/lab.py``).

Two 1-thread runs share the two cores of a small machine at once, each on its own core; runs
at two threads go one at a time (as many at once as the cores hold without sharing one).

``--false-failures N`` executes the lab N times more, at seeds from 1000 and alternately at one
and two threads, exactly as a reader would (nothing recorded), and prints how many runs failed
a check: the measured counterpart of the 1 % the bands are built for.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from srlib.files import write_json  # noqa: E402
from srlib.lab import CALIBRATION, band, within  # noqa: E402
from srlib.table import table  # noqa: E402

LABS = ["srcnn", "fsrcnn", "espcn", "vdsr", "drcn", "drrn", "lapsrn", "edsr", "drn"]


def _papermill():
    try:
        import papermill
    except ImportError:
        raise SystemExit("benchmarks/calibrate.py executes the labs with papermill: pip install papermill") from None
    return papermill


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables (None removes one) for the block; the kernel inherits them."""
    def put(settings):
        for name, value in settings.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    saved = {name: os.environ.get(name) for name in values}
    put(values)
    try:
        yield
    finally:
        put(saved)


def execute(lab: str | Path, parameters: dict, threads: int) -> None:
    """Execute ``book/LAB/lab.ipynb`` (or the notebook at path ``lab``) at the quick budget in full,
    in a scratch folder: its checkpoints are its own."""
    papermill = _papermill()
    notebook = ROOT / "book" / lab / "lab.ipynb" if isinstance(lab, str) else lab
    with _environment(SRLIB_BUDGET="quick", OMP_NUM_THREADS=str(threads), SRLIB_MAX_STEPS=None), \
            tempfile.TemporaryDirectory(prefix="calibrate-") as scratch:
        papermill.execute_notebook(str(notebook), str(Path(scratch) / "executed.ipynb"),
                                   parameters=dict(parameters, threads=threads), cwd=scratch, progress_bar=False,
                                   kernel_name="python3")


def lab_entry(lab: str, records: list[dict]) -> dict:
    """The calibration of one lab from its recorded runs: per claim, the runs, mean, sd and band."""
    import torch

    def spread(part: str, key: str) -> dict:  # every run's value of one quantity, their mean and sd
        runs = [dict(seed=r["seed"], threads=r["threads"], value=round(q["value"], 4))
                for r in records for q in r.get(part, []) if q["key"] == key]
        values = [run["value"] for run in runs]
        return dict(runs=runs, mean=round(statistics.mean(values), 4), sd=round(statistics.stdev(values), 4))

    latest = {c["key"]: c["claim"] for c in records[-1]["claims"]}  # the lab as it is now
    claims = {}
    for key, claim in latest.items():
        stats = spread("claims", key)
        values, seeds = [run["value"] for run in stats["runs"]], len({run["seed"] for run in stats["runs"]})
        claims[key] = dict(claim=claim, **stats, band=list(band(values, seeds, claim, len(latest))))
    quoted = {q["key"]: spread("quoted", q["key"]) for q in records[-1].get("quoted", [])}  # never checked
    return dict(notebook=f"book/{lab}/lab.ipynb", budget="quick", torch_version=torch.__version__,
                source="the lab notebook executed by benchmarks/calibrate.py", claims=claims,
                **({"quoted": quoted} if quoted else {}))


def _record_one(lab: str, seed: int, threads: int) -> tuple[dict, float]:
    """One calibration run (in a worker process, so that its environment is its own)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        claims_file = str(Path(folder) / "claims.json")
        execute(lab, dict(seed=seed, claims_file=claims_file), threads)
        return json.loads(Path(claims_file).read_text()), time.perf_counter() - start


def _in_parallel(function, tasks: list[tuple[int, int]], lab: str, cores: int | None = None):
    """Run ``function(lab, seed, threads)`` for every task, as many at once as the cores hold
    without sharing one (two 1-thread runs on 2 cores, 2-thread runs one at a time); yields
    (seed, threads, result) as each ends."""
    cores = cores or os.cpu_count() or 1
    for count in sorted({threads for _, threads in tasks}):
        group = [(seed, threads) for seed, threads in tasks if threads == count]
        workers = max(1, min(cores // count, len(group)))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(function, lab, seed, threads): (seed, threads) for seed, threads in group}
            for future in as_completed(futures):
                yield (*futures[future], future.result())


def calibrate(lab: str, seeds: int, threads: list[int], write: bool = True, cores: int | None = None) -> None:
    # Runs are kept apart until the calibration is complete, so that an interrupted one neither
    # narrows nor widens the bands the lab asserts meanwhile; it continues where it stopped.
    runs_file = ROOT / "checkpoints" / "calibration" / f"{lab}.json"
    records = json.loads(runs_file.read_text()) if runs_file.is_file() else []
    missing = [(seed, count) for seed in range(seeds) for count in threads
               if not any((r["seed"], r["threads"]) == (seed, count) for r in records)]
    for seed, count, (record, seconds) in _in_parallel(_record_one, missing, lab, cores):
        if not record["calibrated"]:
            raise SystemExit(f"{lab}: the run was not a quick-budget run in full; nothing recorded")
        records.append(record)
        write_json(runs_file, records)
        print(f"{lab} seed {seed}, {count} thread(s): "
              + ", ".join(f"{c['key']} {c['value']:+.3f}" for c in record["claims"])
              + f" ({seconds:.0f} s)", flush=True)
    if not write:
        return
    wanted = {(s, t) for s in range(seeds) for t in threads}
    entry = lab_entry(lab, [r for r in records if (r["seed"], r["threads"]) in wanted])
    calibration = json.loads(CALIBRATION.read_text()) if CALIBRATION.is_file() else {}
    calibration[lab] = entry
    write_json(CALIBRATION, calibration)
    print(f"\n{lab}: band per claim (all of the lab's checks together fail a correct run 1 % of the time)")
    for key, stats in entry["claims"].items():
        low, high = stats["band"]
        limits = " and ".join(f"{s} {x:+.2f}" for s, x in ((">=", low), ("<=", high)) if x is not None)
        print(f"  {key:<52} {stats['mean']:+.2f} ± {stats['sd']:.2f} ({len(stats['runs'])} runs)  {limits}")
    print(f"written to {CALIBRATION.relative_to(ROOT)}")


def _check_one(lab: str, seed: int, threads: int) -> tuple[str | None, float]:
    """One run as a reader's: the lab checks its claims; the failed check's message, if any."""
    papermill = _papermill()
    start = time.perf_counter()
    try:
        execute(lab, dict(seed=seed), threads)
        return None, time.perf_counter() - start
    except papermill.PapermillExecutionError as error:
        return f"{error.ename}: {error.evalue[:200]}", time.perf_counter() - start


def false_failures(lab: str, runs: int, cores: int | None = None) -> None:
    failed = []
    tasks = [(1000 + i, 1 + i % 2) for i in range(runs)]
    for seed, count, (failure, seconds) in _in_parallel(_check_one, tasks, lab, cores):
        if failure:
            failed.append(seed)
        print(f"{lab} seed {seed}, {count} thread(s): {'FAILED: ' + failure if failure else 'passed'} "
              f"({seconds:.0f} s)", flush=True)
    print(f"\n{lab}: {len(failed)} of {runs} correct runs failed a check ({len(failed) / runs:.0%}; the bands are "
          f"built for at most 1 %)" + (f"; seeds {sorted(failed)}" if failed else ""))


def leave_one_seed_out(lab: str) -> tuple[int, int]:
    """The false-failure rate computed from a lab's calibration alone: each seed's runs checked against
    the bands the other seeds give (all of the lab's claims, as the lab checks them). Returns
    (runs that would have failed, runs)."""
    claims = json.loads(CALIBRATION.read_text())[lab]["claims"]
    seeds = sorted({run["seed"] for stats in claims.values() for run in stats["runs"]})
    failed = total = 0
    for left_out in seeds:
        verdicts = {}  # (seed, threads) -> inside every band
        for stats in claims.values():
            others = [run["value"] for run in stats["runs"] if run["seed"] != left_out]
            limits = band(others, len(seeds) - 1, stats["claim"], len(claims))
            for run in stats["runs"]:
                if run["seed"] == left_out:
                    inside = within(run["value"], limits)
                    key = (run["seed"], run["threads"])
                    verdicts[key] = verdicts.get(key, True) and inside
        failed += sum(not ok for ok in verdicts.values())
        total += len(verdicts)
    return failed, total


def report(labs: list[str]) -> None:
    calibration = json.loads(CALIBRATION.read_text())
    rows = []
    for lab in labs:
        if lab not in calibration:
            rows.append([lab, "-", "-", "-", "-", "not calibrated"])
            continue
        runs = [run for stats in calibration[lab]["claims"].values() for run in stats["runs"]]
        threads = ",".join(sorted({str(run["threads"] or "?") for run in runs}))
        failed, total = leave_one_seed_out(lab)
        rows.append([lab, len(calibration[lab]["claims"]), len({run["seed"] for run in runs}), threads, total,
                     f"{failed} of {total} ({failed / total:.0%})"])
    print(table(["lab", "claims", "seeds", "threads", "runs", "false failures"], rows,
                title="False failures computed from each lab's calibration: each seed against the other seeds' bands"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", metavar="LAB", help=", ".join(LABS))
    parser.add_argument("--report", action="store_true",
                        help="run nothing: for each calibrated lab (default all), the false-failure rate computed "
                             "from its calibration")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default 1 2)")
    parser.add_argument("--cores", type=int, help="CPU cores to use (default: all); runs are spread over them")
    parser.add_argument("--runs-only", action="store_true",
                        help="run and keep the runs, but leave srlib/calibration.json as it is (e.g. the 1-thread "
                             "runs now, the 2-thread ones on idle cores later)")
    parser.add_argument("--false-failures", type=int, metavar="N",
                        help="instead of calibrating, run the lab N times at new seeds and count failed checks")
    args = parser.parse_args()
    unknown = [lab for lab in args.labs if lab not in LABS]
    if unknown:
        parser.error(f"unknown lab {', '.join(unknown)}; choose from {', '.join(LABS)}")
    if args.report:
        report(args.labs or LABS)
        return 0
    if not args.labs:
        parser.error("name at least one LAB (or --report)")
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two runs")
    if any(t < 1 for t in args.threads):
        parser.error("--threads must be positive")
    for lab in args.labs:
        if args.false_failures:
            false_failures(lab, args.false_failures, args.cores)
        else:
            calibrate(lab, args.seeds, args.threads, write=not args.runs_only, cores=args.cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
