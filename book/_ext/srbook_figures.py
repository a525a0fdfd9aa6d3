"""Figures quoted in prose, read from the files the runs wrote (loaded from _config.yml).

Two roles, usable in notes and in notebooks' Markdown cells:

``{calibration}`fsrcnn | FSRCNN gain over bicubic (dB)```
    a lab's calibrated quantity, from ``srlib/calibration.json`` (``benchmarks/calibrate.py``).
    After a second ``|``: ``summary`` (the default: "+0.43 ± 0.05 dB"; a count without "(dB)" in
    its name is unsigned, with one decimal: "4.4 ± 5.0"), ``mean``, ``sd``,
    ``range`` ("+0.36 to +0.51 dB"), ``held`` (runs in which the lab's claim held: "5 of 5"),
    ``positive`` (runs above zero), ``seeds``, ``runs``, ``band``; ``:3`` after it gives three
    decimals ("summary:3").
``{reference}`srcnn-x3 | Set5 psnr```
    a reference model's recorded figure, from its provenance file in ``srlib/weights/``:
    ``SET psnr`` (32.12), ``SET ssim`` (0.8987), ``SET gain`` (over bicubic, +1.73), ``SET bicubic``,
    ``minutes``, ``steps``. ``a - b | SET psnr`` is the signed difference of two references.

An unknown lab, quantity, reference or format stops the build (warnings are errors), so prose
cannot quote a figure that the files no longer hold.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from docutils import nodes

SRLIB = Path(__file__).resolve().parents[2] / "srlib"


def _split(target: str) -> tuple[str, str, str]:
    parts = [p.strip() for p in target.split("|")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"{target!r}: write 'NAME | WHAT' or 'NAME | WHAT | FORMAT'")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def calibration_text(target: str) -> str:
    lab, key, form = _split(target)
    form, _, digits = (form or "summary").partition(":")
    places = int(digits or 2)
    entry = json.loads((SRLIB / "calibration.json").read_text()).get(lab, {}).get("claims", {}).get(key)
    if entry is None:
        raise ValueError(f"{lab}: {key!r} is not in srlib/calibration.json")
    values = [r["value"] for r in entry["runs"]]
    decibels = key.endswith("(dB)")  # a difference in dB gets its sign; a count (spikes, steps) does not
    unit = " dB" if decibels else ""
    if not decibels and not digits:
        places = 1
    mean, sd = statistics.mean(values), statistics.stdev(values)

    def signed(x):
        if not decibels and float(x).is_integer():
            return f"{x:.0f}".replace("-", "−")
        return (f"{x:+.{places}f}" if decibels else f"{x:.{places}f}").replace("-", "−")

    if form == "summary":
        return f"{signed(mean)} ± {sd:.{places}f}{unit}"
    if form == "mean":
        return f"{signed(mean)}{unit}"
    if form == "sd":
        return f"{sd:.{places}f}{unit}"
    if form == "range":
        return f"{signed(min(values))} to {signed(max(values))}{unit}"
    if form in ("held", "positive"):
        claim = entry["claim"] if form == "held" else "> 0"
        if claim is None:
            raise ValueError(f"{lab}: {key!r} states no claim; use 'positive'")
        sign, number = claim.split()
        held = sum((v > float(number)) if sign == ">" else (v < float(number)) for v in values)
        return f"{held} of {len(values)}"
    if form == "seeds":
        return str(len({r["seed"] for r in entry["runs"]}))
    if form == "runs":
        return str(len(values))
    if form == "band":
        low, high = entry["band"]
        if high is None:
            return f"above {signed(low)}{unit}"
        if low is None:
            return f"below {signed(high)}{unit}"
        return f"{signed(low)} to {signed(high)}{unit}"
    raise ValueError(f"unknown format {form!r} for {target!r}")


def _provenance(name: str) -> dict:
    path = SRLIB / "weights" / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no reference model {name!r} in srlib/weights")
    return json.loads(path.read_text())


def _reference_value(name: str, what: str) -> tuple[float, str]:
    info = _provenance(name)
    if what == "minutes":
        return info["seconds"] / 60, "{:.0f}"
    if what == "steps":
        return info["recipe"]["steps"], "{:,}"
    set_name, _, figure = what.rpartition(" ")
    measured = info["measured"].get(set_name)
    if measured is None:
        raise ValueError(f"{name}: no figures recorded on {set_name!r}")
    if figure == "psnr":
        return measured["psnr"], "{:.2f}"
    if figure == "ssim":
        return measured["ssim"], "{:.4f}"
    if figure == "bicubic":
        return measured["bicubic_psnr"], "{:.2f}"
    if figure == "gain":
        return measured["psnr"] - measured["bicubic_psnr"], "{:+.2f}"
    raise ValueError(f"unknown figure {what!r} of {name}")


def reference_text(target: str) -> str:
    names, what, extra = _split(target)
    if extra:
        raise ValueError(f"{target!r}: a reference figure takes no format")
    if " - " in names:
        first, second = (n.strip() for n in names.split(" - "))
        (a, form), (b, _) = _reference_value(first, what), _reference_value(second, what)
        places = form.split(".")[1][0] if "." in form else "0"
        return f"{a - b:+.{places}f}".replace("-", "−")
    value, form = _reference_value(names, what)
    return form.format(value).replace("-", "−")


def _role(compute):
    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        try:
            return [nodes.Text(compute(text))], []
        except (ValueError, KeyError) as error:
            message = inliner.reporter.error(f"{name}: {error}", line=lineno)
            return [inliner.problematic(rawtext, rawtext, message)], [message]

    return role


def setup(app):
    app.add_role("calibration", _role(calibration_text))
    app.add_role("reference", _role(reference_text))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
