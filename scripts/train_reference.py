"""Train the book's reference models and store their weights and provenance in srlib/weights.

    SRLIB_DATA=/path/to/data python scripts/train_reference.py srcnn-x3 fsrcnn-x3 --overwrite

The data root must hold T91 and BSD200 (``python -m srlib download T91 BSD200``) and, for the
recorded Set5 figures, Set5. Shipped weights are replaced only with ``--overwrite``;
``--remeasure`` rewrites the recorded figures only when every recorded set is in the data root.
Train one model at a time: two trainings sharing a small CPU each run several times slower.
The recipes are :data:`srlib.reference.RECIPES`.
"""
import sys

from srlib.reference import main

if __name__ == "__main__":
    sys.exit(main())
