"""Figures quoted in prose, read from the files the runs wrote (loaded from _config.yml).

Two roles, usable in notes and in notebooks' Markdown cells:

``{calibration}`fsrcnn | FSRCNN gain over bicubic (dB)```
    a lab's calibrated quantity, from ``srlib/calibration.json`` (``benchmarks/calibrate.py``),
    read by :func:`srlib.lab.calibrated` as the labs read it.
    After a second ``|``: ``summary`` (the default: "+0.43 ± 0.05 dB"; a count without "(dB)" in
    its name is unsigned, with one decimal: "4.4 ± 5.0"), ``mean``, ``sd``,
    ``range`` ("+0.36 to +0.51 dB"), ``held`` (runs in which the lab's claim held: "5 of 5"),
    ``positive`` (runs above zero), ``negative`` (runs below zero), ``seeds``, ``runs``, ``band``;
    ``:3`` after it gives three decimals ("summary:3").
``{reference}`srcnn-x3 | Set5 psnr```
    a reference model's recorded figure, from its provenance file in ``srlib/weights/``
    (:func:`srlib.reference.reference_info`):
    ``SET psnr`` (32.12), ``SET ssim`` (0.8987), ``SET gain`` (over bicubic, +1.73), ``SET bicubic``,
    ``minutes``, ``steps``. ``a - b | SET psnr`` is the signed difference of two references.

An unknown lab, quantity, reference or format stops the build (warnings are errors), so prose
cannot quote a figure that the files no longer hold.
"""

from __future__ import annotations

from docutils import nodes


def _split(target: str) -> tuple[str, str, str]:
    parts = [p.strip() for p in target.split("|")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"{target!r}: write 'NAME | WHAT' or 'NAME | WHAT | FORMAT'")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def _minus(text: str) -> str:
    return text.replace("-", "−")


def calibration_text(target: str) -> str:
    from srlib.lab import calibrated  # the labs' own reader of srlib/calibration.json

    lab, key, form = _split(target)
    form, _, digits = (form or "summary").partition(":")
    quantity = calibrated(lab, key)
    values = quantity.values
    decibels = key.endswith("(dB)")  # a difference in dB gets its sign; a count (spikes, steps) does not
    unit = " dB" if decibels else ""
    places = int(digits or (2 if decibels else 1))

    def number(x):
        if not decibels and float(x).is_integer():
            return _minus(f"{x:.0f}")
        return _minus(f"{x:+.{places}f}" if decibels else f"{x:.{places}f}")

    if form == "summary":
        return f"{number(quantity.mean)} ± {quantity.sd:.{places}f}{unit}"
    if form == "mean":
        return f"{number(quantity.mean)}{unit}"
    if form == "sd":
        return f"{quantity.sd:.{places}f}{unit}"
    if form == "range":
        return f"{number(min(values))} to {number(max(values))}{unit}"
    if form == "held":
        if quantity.claim is None:
            raise ValueError(f"{lab}: {key!r} states no claim; use 'positive'")
        return f"{quantity.held()} of {len(values)}"
    if form == "positive":
        return f"{quantity.held('> 0')} of {len(values)}"
    if form == "negative":
        return f"{quantity.held('< 0')} of {len(values)}"
    if form == "seeds":
        return str(quantity.seeds)
    if form == "runs":
        return str(len(values))
    if form == "band":
        low, high = quantity.band
        if high is None:
            return f"above {number(low)}{unit}"
        if low is None:
            return f"below {number(high)}{unit}"
        return f"{number(low)} to {number(high)}{unit}"
    raise ValueError(f"unknown format {form!r} for {target!r}")


def _reference_value(name: str, what: str) -> tuple[float, int]:
    """A recorded figure of reference ``name`` and the decimals it is quoted with."""
    from srlib.reference import reference_info  # the provenance file, checked as the labs load it

    info = reference_info(name)
    if what == "minutes":
        return info["seconds"] / 60, 0
    if what == "steps":
        return info["recipe"]["steps"], 0
    set_name, _, figure = what.rpartition(" ")
    measured = info["measured"].get(set_name)
    if measured is None:
        raise ValueError(f"{name}: no figures recorded on {set_name!r}")
    figures = {"psnr": (measured["psnr"], 2), "ssim": (measured["ssim"], 4),
               "bicubic": (measured["bicubic_psnr"], 2), "gain": (measured["psnr"] - measured["bicubic_psnr"], 2)}
    if figure not in figures:
        raise ValueError(f"unknown figure {what!r} of {name}")
    return figures[figure]


def reference_text(target: str) -> str:
    names, what, extra = _split(target)
    if extra:
        raise ValueError(f"{target!r}: a reference figure takes no format")
    if " - " in names:
        first, second = (n.strip() for n in names.split(" - "))
        (a, places), (b, _) = _reference_value(first, what), _reference_value(second, what)
        return _minus(f"{a - b:+.{places}f}")
    value, places = _reference_value(names, what)
    signed = "+" if what.endswith(" gain") else ""
    return _minus(f"{value:{signed},.{places}f}")


def _role(compute):
    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        try:
            return [nodes.Text(compute(text))], []
        except (ValueError, KeyError, OSError) as error:
            message = inliner.reporter.error(f"{name}: {error}", line=lineno)
            return [inliner.problematic(rawtext, rawtext, message)], [message]

    return role


def setup(app):
    app.add_role("calibration", _role(calibration_text))
    app.add_role("reference", _role(reference_text))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
