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


def test_srlib_device_chooses_the_device_unless_one_is_asked_for(monkeypatch):
    monkeypatch.setenv("SRLIB_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    monkeypatch.setenv("SRLIB_DEVICE", "tpu7")
    with pytest.raises(RuntimeError, match="unknown device 'tpu7'.*SRLIB_DEVICE"):
        pick_device()
    assert pick_device("cpu") == torch.device("cpu")  # an explicit request wins
    if not torch.cuda.is_available():
        monkeypatch.setenv("SRLIB_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device()


def test_mps_is_announced_when_chosen_on_its_own(monkeypatch, capsys):
    import srlib.device as device

    monkeypatch.delenv("SRLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    monkeypatch.setattr(device, "_mps_announced", False)
    assert pick_device() == torch.device("mps")
    assert pick_device() == torch.device("mps")
    assert capsys.readouterr().err.count("Apple's MPS") == 1  # once per session, one line


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first
