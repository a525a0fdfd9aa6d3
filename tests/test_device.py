"""Device choice and seeding."""
import random

import numpy as np
import pytest
import torch

from srlib.device import pick_device, seed_everything


def test_pick_device_honours_a_request_and_refuses_a_missing_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device() in (torch.device("cuda"), torch.device("mps"), torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda:1")


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first
