"""Shared fixtures: the data root, and skipping (with the reason) when a data set is absent."""
import os

import pytest

from srlib.datasets import data_root


def require_data(*relative: str):
    """The data-root path of ``relative``, or skip the test saying what is missing and why."""
    path = data_root().joinpath(*relative)
    if not path.exists():
        reason = (f"{path} not found: set SRLIB_DATA to a data root holding it "
                  f"(python data_scripts/download.py {relative[0]})")
        if os.environ.get("CI") == "true" and os.environ.get("SRLIB_DATA"):
            pytest.fail(f"CI provides SRLIB_DATA but {reason}")
        pytest.skip(reason)
    return path
