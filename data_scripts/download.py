#!/usr/bin/env python
"""Download the standard super-resolution data sets: ``python data_scripts/download.py --help``.

The same command as ``python -m srlib download``; the code lives in :mod:`srlib.datasets`.
"""
import sys
from pathlib import Path

try:
    from srlib.datasets import main
except ImportError:  # a checkout of the book where srlib is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from srlib.datasets import main

if __name__ == "__main__":
    sys.exit(main(prog="download.py"))
