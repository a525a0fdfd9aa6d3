"""Size and speed of every model of the zoo in its published configuration.

    python benchmarks/models.py            # all models, latency on the CPU
    python benchmarks/models.py --budget 30 --repeats 5

For each model the table gives the parameters (the paper's count alongside), the
multiply-accumulates (MACs) of one forward pass that produces a 256x256 output, and the
median latency of that forward pass. Every model is measured at x4 (all of them support
it), so the input is a 64x64 LR image for models that enlarge the image themselves and the
256x256 bicubic-upsampled image for SRCNN, VDSR, DRCN and DRRN. RGB models get 3 channels,
Y models 1.

MACs are counted on PyTorch's meta device (no computation), so they are exact and
instant. Latency is measured only when the estimated time of one pass (MACs divided by a
measured convolution throughput) is under ``--budget`` seconds; the others are reported as
skipped with their estimate. Timings depend on the machine and on whatever else it is
running.
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

from srlib.models import build, count_parameters, spec  # noqa: E402
from srlib.profile import profile  # noqa: E402

HR_SIZE = 256
SCALE = 4
# (model, size): the paper configurations, plus the other published variants.
CONFIGS = [
    ("srcnn", "paper"), ("srcnn", "9-1-5"), ("fsrcnn", "paper"), ("espcn", "paper"),
    ("vdsr", "paper"), ("drcn", "paper"), ("drrn", "B1U9"), ("drrn", "B1U25"),
    ("lapsrn", "paper"), ("edsr", "baseline"), ("edsr", "paper"), ("mdsr", "paper"),
    ("drn", "paper"), ("drn", "large"),
]


def conv_throughput() -> float:
    """MACs per second of a typical 64->64 3x3 convolution on this CPU."""
    layer = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.rand(1, 64, 128, 128)
    macs = 64 * 64 * 9 * 128 * 128
    with torch.no_grad():
        layer(x)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            layer(x)
            times.append(time.perf_counter() - start)
    return macs / min(times)


def published(name: str, size: str, scale: int):
    value = spec(name).paper_params.get(size)
    if isinstance(value, dict):
        value = value.get(scale)
    return value


def human(n: float | None, unit: str = "") -> str:
    if n is None:
        return "-"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= factor:
            return f"{n / factor:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=10.0,
                        help="skip latency when one pass is estimated above this (s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model (after one warm-up run)")
    args = parser.parse_args(argv)

    throughput = conv_throughput()
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"conv throughput ~{throughput / 1e9:.1f} GMAC/s")
    print(f"x{SCALE}, output {HR_SIZE}x{HR_SIZE}; latency = median of {args.repeats} runs after a warm-up\n")
    header = ["model", "size", "input", "params", "paper", "MACs", "latency"]
    rows = []
    for name, size in CONFIGS:
        s = spec(name)
        model = build(name, SCALE, size=size)
        side = HR_SIZE // SCALE if s.input == "lr" else HR_SIZE
        shape = (1, s.channels, side, side)
        counted = profile(model, shape, measure_latency=False)
        estimate = counted.macs / throughput
        if estimate <= args.budget:
            latency = f"{profile(model, shape, repeats=args.repeats, warmup=1).latency_ms:,.0f} ms"
        else:
            latency = f"skipped (~{estimate:.0f} s est.)"
        params = count_parameters(model)
        note = ""
        if name == "drn":  # the paper counts the primal network; the dual ones are tiny
            params = sum(p.numel() for p in model.primal_parameters())
            note = " (primal)"
        rows.append([name, size, "x".join(map(str, shape[1:])), f"{params:,}{note}",
                     human(published(name, size, SCALE)), human(counted.macs), latency])
        del model

    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print("\nMACs: multiply-accumulates of one forward pass (FLOPs ~ 2 x MACs); "
          "recursive layers are counted at every application.")
    print("paper: the published count. SRCNN and FSRCNN count weights without biases, DRRN "
          "counts convolutions without batch norm, DRN the primal network only.")


if __name__ == "__main__":
    main()
