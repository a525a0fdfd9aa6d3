"""Measure the papers' own released models and record the figures the book prints.

    SRLIB_DATA=/path/to/data python benchmarks/authors.py        # all models whose file is there

For each model of :mod:`srlib.authors` whose file is in ``$SRLIB_DATA/authors`` (or can be
downloaded) and each of its scales: Set5 under every protocol of :mod:`srlib.protocols` (the
paper's own among them), the bundled photographs under the book's protocol, and, for SRCNN and
FSRCNN, Set5 with the convolutions padded with zeros instead of the replicated border the
authors' code uses. The figures go to ``srlib/weights/authors_measured.json``, which the
notebooks print when the files are absent and ``tests/test_authors.py`` measures again.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from srlib.authors import AUTHORS, MEASURED, authors_path, load_authors
from srlib.data import load_set, sample_images
from srlib.files import write_json
from srlib.models import rebuild
from srlib.protocols import PROTOCOLS, evaluate_protocol


def zero_padded(model: torch.nn.Module) -> torch.nn.Module:
    """The same weights in the same network with every convolution padded with zeros."""
    twin = rebuild(model.srlib_name, {**model.srlib_config, "padding_mode": "zeros"})
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def measure(name: str, scale: int, set5: dict, photos: dict) -> dict:
    entry = AUTHORS[name]
    model = load_authors(name, scale, progress=False)
    figures = {"published": entry.published[scale], "protocol": entry.protocol, "set5": {}}
    for protocol in PROTOCOLS:
        result = evaluate_protocol(model, set5, scale, protocol)
        figures["set5"][protocol] = round(result.mean_psnr, 4)
        if protocol == "book":
            figures["set5_book_ssim"] = round(result.mean_ssim, 4)
            figures["set5_bicubic"] = round(result.mean_bicubic_psnr, 4)
    photo = evaluate_protocol(model, photos, scale, "book")
    figures["photos_book"] = round(photo.mean_psnr, 4)
    figures["photos_bicubic"] = round(photo.mean_bicubic_psnr, 4)
    if entry.model in ("srcnn", "fsrcnn"):  # the networks whose authors' code replicates the border
        figures["set5_book_zero_padding"] = round(evaluate_protocol(zero_padded(model), set5, scale, "book").mean_psnr,
                                                  4)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="models to measure (default: every one whose file is present)")
    args = parser.parse_args(argv)
    names = args.names or [n for n in AUTHORS if authors_path(n).is_file()]
    set5, photos = load_set("Set5"), sample_images("test")
    recorded = json.loads(MEASURED.read_text()) if MEASURED.is_file() else {}
    models = recorded.get("models", {})
    for name in names:
        start = time.perf_counter()
        models[name] = {str(s): measure(name, s, set5, photos) for s in AUTHORS[name].scales}
        print(f"{name}: " + ", ".join(f"x{s} {f['set5'][f['protocol']]:.2f} (published {f['published']})"
                                      for s, f in models[name].items())
              + f"  [{time.perf_counter() - start:.0f} s]", flush=True)
    result = {
        "what": "Set5 PSNR (dB) of the papers' released models in srlib under each protocol of srlib.protocols, "
                "the bundled photographs under the book's protocol, and SRCNN/FSRCNN with zero padding",
        "command": "python benchmarks/authors.py",
        "torch": torch.__version__,
        "saved": time.strftime("%Y-%m-%d", time.gmtime()),
        "models": {n: models[n] for n in AUTHORS if n in models},
    }
    write_json(MEASURED, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
