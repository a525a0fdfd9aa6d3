"""Checkpoints under damage and misuse: refused with a clear message, never loaded as garbage, never clobbered."""
import os
import socket
import threading

import pytest
import torch
import torch.nn as nn

from conftest import flip_weight_byte
from srlib.checkpoint import (
    CheckpointLocked,
    checkpoint_lock,
    checkpoint_sha256,
    load_checkpoint,
    load_model,
    save_checkpoint,
    weights_sha256,
)
from srlib.models import build
from srlib.train import check_same_settings, fit


@pytest.fixture
def saved(tmp_path):
    """A checkpoint of an ESPCN x2 and the model it holds."""
    torch.manual_seed(0)
    model = build("espcn", 2, size="quick")
    path = tmp_path / "espcn.pt"
    save_checkpoint(path, model, step=3, facts=dict(lr=1e-3, batch_size=4))
    return path, model


def rewrite(path, change, sign=True):
    """Load a checkpoint as plain data, apply ``change`` to the dict, and write it back with torch.save:
    with a checksum of the changed contents (as code other than srlib's might write), or, with
    ``sign=False``, with the old checksum (as an edit by hand would leave it)."""
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    if sign and "sha256" in ckpt:
        ckpt["sha256"] = checkpoint_sha256(ckpt)
    torch.save(ckpt, path)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


# ---------------------------------------------------------------------------- damaged files


def test_a_flipped_bit_in_the_weights_is_refused(saved):
    path, _ = saved
    damaged = flip_weight_byte(path)
    for load in (load_checkpoint, load_model):
        with pytest.raises(ValueError, match="does not match its checksum: the file is damaged"):
            load(path)
    assert path.read_bytes() == damaged  # loading never writes


@pytest.mark.parametrize("damage", ["truncated", "empty", "zip header", "text"])
def test_damaged_files_are_refused_with_a_clear_error(saved, damage):
    path, _ = saved
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "zip header":
        data[:4] = b"XXXX"
    else:
        data = bytearray(b"model weights, see attached")
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="could not be read as an srlib checkpoint"):
        load_checkpoint(path)


def test_a_flipped_byte_anywhere_is_refused_or_harmless(saved):
    """Wherever a byte is damaged, the checkpoint is refused with a message, or loads exactly as saved."""
    path, model = saved
    original = path.read_bytes()
    refused = 0
    for at in range(0, len(original), len(original) // 40):
        damaged = bytearray(original)
        damaged[at] ^= 0x55
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_model(path)
        except ValueError as error:
            assert "checkpoint" in str(error) or "checksum" in str(error), str(error)
            refused += 1
        else:
            assert same_weights(loaded, model), f"byte {at} changed the weights without an error"
    assert refused > 20


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)


def test_a_pickle_with_code_is_not_loaded(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "srlib-checkpoint", "payload": socket.socket}, path)  # a class: needs full unpickling
    with pytest.raises(ValueError, match="loading those could run code"):
        load_checkpoint(path)


# ---------------------------------------------------------------------------- altered contents


@pytest.mark.parametrize("key", ["model_state", "model_name", "model_config", "scale", "step", "history", "rng"])
def test_a_missing_part_is_named(saved, key):
    path, _ = saved
    rewrite(path, lambda ckpt: ckpt.pop(key))
    with pytest.raises(ValueError, match=f"lacks {key}: an incomplete or altered checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("change,loader,reason", [
    (lambda ckpt: ckpt.update(model_state={"conv1.weight": [1.0, 2.0]}), load_checkpoint,
     "model_state is not a dict of tensors"),
    (lambda ckpt: ckpt.update(scale=3), load_model, "says scale x3 but its model configuration says x2"),
    (lambda ckpt: ckpt["model_config"].update(n1=16), load_model,  # the weights are for n1=64
     "do not fit espcn x2 as its configuration describes it"),
    (lambda ckpt: ckpt.update(version=99), load_checkpoint, "update srlib"),
], ids=["weights that are not tensors", "a scale that contradicts the configuration",
        "a configuration that does not fit the weights", "a newer format asks for an update"])
def test_an_altered_checkpoint_is_refused_with_its_reason(saved, change, loader, reason):
    path, _ = saved
    rewrite(path, change)
    with pytest.raises(ValueError, match=reason):
        loader(path)


@pytest.mark.parametrize("change,phrase", [
    (lambda ckpt: ckpt.update(model_name="espcnn"), "cannot build: unknown model 'espcnn'"),
    (lambda ckpt: (ckpt.update(scale=5), ckpt["model_config"].update(scale=5)), "supports scales (2, 3, 4), got 5"),
    (lambda ckpt: ckpt["model_config"].update(width=3), "does not take ['width']"),
])
def test_a_model_this_srlib_cannot_build(saved, change, phrase):
    path, _ = saved
    rewrite(path, change)
    with pytest.raises(ValueError, match="describes a model this srlib cannot build") as refused:
        load_model(path)
    assert phrase in str(refused.value)


def as_version_1(ckpt, weights_checksum=True):
    """A checkpoint as version 1 wrote it: a checksum of the weights only (or, earlier, none)."""
    ckpt.pop("sha256")
    ckpt["version"] = 1
    if weights_checksum:
        ckpt["weights_sha256"] = weights_sha256(ckpt["model_state"])


@pytest.mark.parametrize("weights_checksum", [True, False], ids=["version 1", "before checksums"])
def test_older_checkpoints_still_load(saved, weights_checksum):
    path, model = saved
    rewrite(path, lambda ckpt: as_version_1(ckpt, weights_checksum))
    assert same_weights(load_model(path), model)


def test_a_version_1_checkpoint_with_damaged_weights_is_refused(saved):
    path, _ = saved
    rewrite(path, as_version_1)
    flip_weight_byte(path)
    with pytest.raises(ValueError, match="do not match their checksum: the file is damaged"):
        load_checkpoint(path)


def test_the_checksum_covers_names_shapes_and_bytes(saved):
    path, model = saved
    state = model.state_dict()
    stored = torch.load(path, weights_only=True)
    assert stored["sha256"] == checkpoint_sha256(stored)
    renamed = {("x" + k if i == 0 else k): v for i, (k, v) in enumerate(state.items())}
    reshaped = {k: (v.reshape(-1) if i == 0 else v) for i, (k, v) in enumerate(state.items())}
    assert len({weights_sha256(state), weights_sha256(renamed), weights_sha256(reshaped)}) == 3
    assert weights_sha256({"half": torch.ones(3, dtype=torch.bfloat16)})  # dtypes NumPy lacks


# ---------------------------------------------------------------------------- resuming with other settings


class Pairs(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(16, 1, 8, 8, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.x[i] * 0.5


def tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Conv2d(1, 1, 3, padding=1)
    model.scale, model.srlib_name, model.srlib_config = 1, "tiny", {"scale": 1}
    return model


BASE = dict(steps=2, lr=1e-3, batch_size=4, optimizer="adam", lr_schedule=None, clip_grad=None, clip_mode="norm",
            seed=0, progress=False)


@pytest.mark.parametrize("change,phrase", [
    (dict(lr=1e-2), "lr=0.001, this run asks for lr=0.01"),
    (dict(batch_size=8), "batch_size=4, this run asks for batch_size=8"),
    (dict(optimizer="sgd"), "optimizer=adam, this run asks for optimizer=sgd"),
    (dict(lr_schedule="cosine"), "lr_schedule=None, this run asks for lr_schedule=cosine"),
    (dict(clip_grad=1.0), "clip_grad=None, this run asks for clip_grad=1.0"),
    (dict(clip_grad=None, clip_mode="value"), "clip_mode=norm, this run asks for clip_mode=value"),
    (dict(seed=1), "seed=0, this run asks for seed=1"),
])
def test_resume_refuses_changed_training_settings(tmp_path, change, phrase):
    path = tmp_path / "run.pt"
    fit(tiny(), Pairs(), checkpoint=path, **BASE)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=phrase) as refused:
        fit(tiny(), Pairs(), checkpoint=path, **{**BASE, "steps": 4, **change})
    assert "continue it with its own settings, or start a new run in another checkpoint" in str(refused.value)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["run.pt"]


def test_resume_may_add_steps(tmp_path):
    path = tmp_path / "run.pt"
    fit(tiny(), Pairs(), checkpoint=path, **BASE)
    history = fit(tiny(seed=5), Pairs(), checkpoint=path, **{**BASE, "steps": 4})
    assert history.steps == [1, 2, 3, 4]


def test_settings_of_one_process_and_of_older_checkpoints():
    check_same_settings({"lr": 0.1}, {"lr": 0.1, "batch_size": 4}, "old.pt")  # older: no batch_size recorded
    check_same_settings({"milestones": [2, 4]}, {"milestones": (2, 4)}, "run.pt")  # stored tuples are lists
    with pytest.raises(ValueError, match="processes=2, this run asks for processes=1"):
        check_same_settings({"processes": 2}, {}, "run.pt")


# ---------------------------------------------------------------------------- the lock


def test_lock_is_created_and_removed(tmp_path):
    path = tmp_path / "run.pt"
    with checkpoint_lock(path):
        assert (tmp_path / "run.pt.lock").read_text().split()[0] == str(os.getpid())
    assert list(tmp_path.iterdir()) == []


def test_lock_is_removed_after_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="power cut"), checkpoint_lock(tmp_path / "run.pt"):
        raise RuntimeError("power cut")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content,phrase", [
    (f"{os.getpid()} {socket.gethostname()}\n", f"process {os.getpid()} on {socket.gethostname()}"),
    (f"{os.getpid()} some-other-machine\n", "on some-other-machine"),
    ("", "a run that is starting"),
], ids=["this machine", "another machine", "starting"])  # the same names in every test process
def test_a_held_lock_refuses(tmp_path, content, phrase):
    lock = tmp_path / "run.pt.lock"
    lock.write_text(content)
    with pytest.raises(CheckpointLocked, match=phrase) as refused, checkpoint_lock(tmp_path / "run.pt"):
        pass
    assert f"delete '{lock}' if no such run exists" in str(refused.value)
    assert lock.read_text() == content  # someone else's lock is left alone


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, capsys):
    lock = tmp_path / "run.pt.lock"
    lock.write_text(f"999999999 {socket.gethostname()}\n")
    with checkpoint_lock(tmp_path / "run.pt"):
        assert lock.read_text().split()[0] == str(os.getpid())
    assert "taking over" in capsys.readouterr().err and not lock.exists()


def test_two_locks_on_one_checkpoint(tmp_path):
    """Another thread is refused; the same thread may take its own lock again (the command line, then fit)."""
    refused = []

    def second():
        try:
            with checkpoint_lock(tmp_path / "run.pt"):
                pass
        except CheckpointLocked as error:
            refused.append(str(error))

    with checkpoint_lock(tmp_path / "run.pt"):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
        assert refused and "being written by another training run" in refused[0]
        assert (tmp_path / "run.pt.lock").exists()  # the refused second one did not remove the first's
        with checkpoint_lock(tmp_path / "run.pt"):
            assert (tmp_path / "run.pt.lock").exists()
        assert (tmp_path / "run.pt.lock").exists()  # leaving the nested one keeps the outer lock
    assert not (tmp_path / "run.pt.lock").exists()
