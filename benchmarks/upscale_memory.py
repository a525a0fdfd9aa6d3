"""Peak memory of `python -m srlib upscale` on a 3000 x 3000 photograph at x3 with FSRCNN.

    OMP_NUM_THREADS=1 python benchmarks/upscale_memory.py           # the command as it is: tiled
    OMP_NUM_THREADS=1 python benchmarks/upscale_memory.py --whole   # and the whole image at once

Everything is made in a temporary folder: a synthetic photograph and an untrained FSRCNN x3
checkpoint (weights do not change the memory needed). Each run is a process of its own, and
its peak resident set size is what the operating system reports for it (``ru_maxrss``).
``--whole`` also measures the image upscaled in one piece, as ``upscale`` did before it cut
large images into tiles (:func:`srlib.inference.upscale_tiled`); that run needs several gigabytes.

Measured on a 2-core CPU, OMP_NUM_THREADS=1 (torch 2.13): whole image 8.95 GB, tiles 1.09 GB.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 3000  # LR pixels: the output is 9000 x 9000

WHOLE = """
import sys
from PIL import Image
from srlib.checkpoint import load_model
from srlib.data import load_image
from srlib.evaluate import upscale_image
Image.fromarray(upscale_image(load_model(sys.argv[1]), load_image(sys.argv[2]))).save(sys.argv[3])
"""


def synthetic_photo(path: Path) -> None:
    """Smooth gradients with fine noise: compresses like a photograph, decodes to 3000 x 3000 x 3."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    noise = np.random.default_rng(0).normal(0, 8, (SIDE, SIDE, 3)).astype(np.float32)
    rgb = np.stack([200 * x, 200 * y, 100 + 80 * np.sin(8 * x + 5 * y)], axis=-1) + noise
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)


def peak_memory(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return its peak resident set size in GB and its wall time in seconds."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # the resources of this child alone
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    kilobytes = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
    return kilobytes * 1024 / 1e9, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--whole", action="store_true", help="also upscale the image in one piece (needs ~10 GB)")
    args = parser.parse_args(argv)

    import torch

    from srlib.checkpoint import save_checkpoint
    from srlib.models import build

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        photo, checkpoint = folder / "photo.png", folder / "fsrcnn_x3.pt"
        synthetic_photo(photo)
        torch.manual_seed(0)
        save_checkpoint(checkpoint, build("fsrcnn", 3))
        runs = {"upscale (tiles)": [sys.executable, "-m", "srlib", "upscale", str(checkpoint), str(photo),
                                    "--out-dir", str(folder / "tiled")]}
        if args.whole:
            runs["whole image"] = [sys.executable, "-c", WHOLE, str(checkpoint), str(photo), str(folder / "whole.png")]
        print(f"FSRCNN x3 on a {SIDE}x{SIDE} RGB photograph, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
        for name, command in runs.items():
            gigabytes, seconds = peak_memory(command)
            print(f"{name:>16}: peak resident set {gigabytes:.2f} GB, {seconds:.0f} s")


if __name__ == "__main__":
    main()
