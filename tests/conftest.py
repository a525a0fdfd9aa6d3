"""Shared fixtures: the data root, and skipping (with the reason) when a data set is absent."""
import os

import pytest

from srlib.data import data_root


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


def flip_weight_byte(path) -> bytes:
    """Flip one bit inside the first weight tensor stored in checkpoint ``path``, the way a disk error
    or a bad copy would; return the damaged bytes (now the file's content)."""
    import torch

    state = torch.load(path, weights_only=True)["model_state"]
    first = next(iter(state.values())).numpy().tobytes()
    data = bytearray(open(path, "rb").read())
    at = bytes(data).find(first[:32])
    assert at > 0, "the weights are not stored as raw bytes"
    data[at + 7] ^= 0x40
    open(path, "wb").write(bytes(data))
    return bytes(data)
