"""A lab notebook's run: its seed, threads and device, and the training claims it checks.

A lab trains for a minute and concludes ("FSRCNN beats SRCNN given the same time"). One seed
is an anecdote, so every such claim is calibrated: ``benchmarks/calibrate.py`` executes the lab
notebook itself at many seeds, at one and at two CPU threads, and stores every measured value
in ``srlib/calibration.json``. A lab then asserts, for each claim, that its own run falls in a
*prediction interval*: the range in which one new correct run lands, with probability
1 - a, given the n calibration runs (mean m, standard deviation s)::

    m +- t(1 - a/2; n - 1) * s * sqrt(1 + 1/n)      (one-sided claims: one bound, t(1 - a; n - 1))

with n the number of calibrated seeds (runs at two thread counts of one seed are not
independent). The false-failure rate a is shared out among a lab's checks so that all of them
together fail a correct run at most 1 time in 100. A claim with a direction ("> 0") is asserted
only where its band lies beyond that threshold; otherwise the lab states it with its spread.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .device import pick_device
from .files import write_json

__all__ = ["Claim", "Run", "start_run", "calibrated", "band", "lab_seed"]

CALIBRATION = Path(__file__).resolve().parent / "calibration.json"
FALSE_FAILURES = 0.01  # of one lab's statistical checks together, for one correct run


def lab_seed() -> int:
    """``$SRLIB_SEED`` (default 0): the seed a lab notebook trains with."""
    text = os.environ.get("SRLIB_SEED", "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"SRLIB_SEED={text!r} is not a seed: give a whole number such as 0 or 7")
    return int(text)


@dataclass(frozen=True)
class Claim:
    """A quantity a lab measured (``value``) under the name its calibration records (``key``).

    ``claim`` is the paper's statement about it, ``"> 0"`` or ``"< 8"`` (a threshold), or
    ``None`` for a quantity that is only checked against its calibrated band.
    """

    key: str
    value: float
    claim: str | None = None

    @property
    def threshold(self) -> tuple[str, float] | None:
        return threshold(self.claim)


def threshold(claim: str | None) -> tuple[str, float] | None:
    """``"> 0"`` as ``(">", 0.0)``; None for no claim."""
    if claim is None:
        return None
    sign, number = claim.split()
    if sign not in (">", "<"):
        raise ValueError(f"claim {claim!r}: write '> X' or '< X'")
    return sign, float(number)


def _t_quantile(p: float, df: int) -> float:
    from scipy.stats import t  # scipy comes with scikit-image

    return float(t.ppf(p, df))


def band(values: list[float], seeds: int, claim: str | None, checks: int,
         false_failures: float = FALSE_FAILURES) -> tuple[float | None, float | None]:
    """The prediction interval (low, high) for one new run of ``checks`` checks sharing
    ``false_failures``; a "> X" claim gets only a low bound, a "< X" claim only a high one."""
    if seeds < 2 or len(values) < 2:
        raise ValueError(f"a band needs at least two calibrated seeds, not {seeds}")
    mean, sd = statistics.mean(values), statistics.stdev(values)
    sides = 1 if claim else 2
    half = _t_quantile(1 - false_failures / checks / sides, seeds - 1) * sd * math.sqrt(1 + 1 / seeds)
    sign = threshold(claim)[0] if claim else None
    low = None if sign == "<" else round(mean - half, 4)
    high = None if sign == ">" else round(mean + half, 4)
    return low, high


def within(value: float, limits: tuple[float | None, float | None]) -> bool:
    """Whether ``value`` lies in a band (low, high); a missing bound does not limit."""
    low, high = limits
    return (low is None or value >= low) and (high is None or value <= high)


_loaded: dict = {}  # the calibration file's contents, read again only when the file changes


def _calibration() -> dict:
    if not CALIBRATION.is_file():
        return {}
    stamp = CALIBRATION.stat().st_mtime_ns
    if _loaded.get("stamp") != stamp:
        _loaded.update(stamp=stamp, data=json.loads(CALIBRATION.read_text()))
    return _loaded["data"]


@dataclass(frozen=True)
class Calibrated:
    """One calibrated quantity: its runs, their mean and spread, and the band a lab asserts."""

    key: str
    values: list[float]
    seeds: int
    threads: list
    claim: str | None
    band: tuple[float | None, float | None]

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values)

    def held(self, claim: str | None = None) -> int:
        """In how many calibration runs ``claim`` (default: the calibrated claim) held."""
        sign, number = threshold(claim or self.claim)
        return sum((v > number) if sign == ">" else (v < number) for v in self.values)

    def summary(self) -> str:
        threads = "/".join(str(t) for t in self.threads) if all(self.threads) else "?"
        return (f"{self.mean:+.2f} ± {self.sd:.2f} over {self.seeds} seeds "
                f"({len(self.values)} runs, {threads} threads)")


def calibrated(lab: str, key: str) -> Calibrated:
    """The calibration of quantity ``key`` of lab ``lab`` (from ``srlib/calibration.json``): a checked
    claim, or a quantity only quoted by the lab's text (no claim, no band)."""
    lab_entry = _calibration().get(lab, {})
    entry = lab_entry.get("claims", {}).get(key) or lab_entry.get("quoted", {}).get(key)
    if entry is None:
        raise KeyError(f"{lab}: {key!r} is not calibrated; run python benchmarks/calibrate.py {lab}")
    runs = entry["runs"]
    return Calibrated(key, [r["value"] for r in runs], len({r["seed"] for r in runs}),
                      sorted({r["threads"] for r in runs}, key=lambda t: (t is None, t)), entry.get("claim"),
                      tuple(entry.get("band", (None, None))))


@dataclass(frozen=True)
class Run:
    """How a lab notebook runs: which lab, its seed, device and CPU threads, and, when the
    calibration executes it, where its measured claims go (``claims_file``)."""

    lab: str
    seed: int
    device: torch.device
    claims_file: str | None = None

    @property
    def checkpoints(self) -> str:
        """The lab's checkpoint folder: another seed trains its own models, never loads seed 0's."""
        return "checkpoints" if self.seed == 0 else f"checkpoints/seed{self.seed}"

    def check_claims(self, budget, claims: list[Claim], quoted: dict[str, float] | None = None) -> None:
        """Check this run's training claims against their calibration, or record them for it.

        Only a quick-budget run in full is calibrated (``budget.calibrated``); other runs say so
        in one line. A value outside its band fails with what it means and what to do. ``quoted``
        (key: value) are quantities the lab's text quotes from the calibration: recorded, never checked.
        """
        if self.claims_file is not None:  # a calibration run records, and checks nothing
            write_json(self.claims_file, dict(
                lab=self.lab, seed=self.seed, threads=torch.get_num_threads(), budget=budget.name,
                calibrated=budget.calibrated,
                claims=[dict(key=c.key, value=float(c.value), claim=c.claim) for c in claims],
                quoted=[dict(key=key, value=float(value)) for key, value in (quoted or {}).items()]))
            print(f"claims recorded for calibration: {len(claims)}")
            return
        if not budget.calibrated:
            budget.skip_calibrated()
            return
        rate = FALSE_FAILURES / len(claims)
        print(f"Training claims of this run (seed {self.seed}), each against the band that one correct run "
              f"misses {rate:.2%} of the time:")
        failures = []
        for c in claims:
            calibration = calibrated(self.lab, c.key)
            if calibration.claim != c.claim:
                raise ValueError(f"{self.lab}: {c.key!r} is calibrated as claim {calibration.claim!r}, the lab "
                                 f"states {c.claim!r}; run python benchmarks/calibrate.py {self.lab}")
            low, high = calibration.band  # computed for this lab's number of checks (tests/test_lab.py)
            inside = within(c.value, (low, high))
            limits = " and ".join(f"{s} {x:+.2f}" for s, x in ((">=", low), ("<=", high)) if x is not None)
            verdict = "ok" if inside else "OUTSIDE"
            statement = ""
            if c.claim is not None:
                sign, number = c.threshold
                asserted = (low is not None and low > number) or (high is not None and high < number)
                statement = (f"; claim {c.claim} " + ("asserted by the band" if asserted else
                             f"not asserted (held in {calibration.held()} of {len(calibration.values)} "
                             "calibration runs)"))
            print(f"  {c.key}: {c.value:+.3f}, calibrated {calibration.summary()}; band {limits}: "
                  f"{verdict}{statement}")
            if not inside:
                failures.append(f"{c.key} = {c.value:+.3f} is outside its band ({limits})")
        if failures:
            raise AssertionError(
                "; ".join(failures) + f". A correct run does this about {FALSE_FAILURES:.0%} of the time: run the "
                f"lab again with another seed (SRLIB_SEED={self.seed + 1}); if it fails twice, report it with "
                "this output.")


def start_run(lab: str, seed: int | None = None, threads: int | None = None, claims_file: str | None = None,
              device: str | torch.device | None = None) -> Run:
    """Settle a lab's seed (``seed``, else ``$SRLIB_SEED``, else 0), CPU threads (``threads``,
    else PyTorch's choice) and device (:func:`srlib.device.pick_device`), and print them."""
    seed = lab_seed() if seed is None else int(seed)
    if threads is not None:
        torch.set_num_threads(int(threads))
    run = Run(lab, seed, pick_device(device), claims_file)
    print(f"seed: {run.seed} | device: {run.device} | CPU threads: {torch.get_num_threads()}")
    return run
