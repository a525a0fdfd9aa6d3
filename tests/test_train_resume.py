"""Resuming and saving runs under misuse and bad luck: other data, a changed schedule, damaged training
state, two writers, a full disk, what a killed run leaves behind. Each case is refused in one line that
names the file, the problem and the way out, and no file is lost or half-written."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from test_checkpoint import BASE, Pairs, as_version_1, rewrite, tiny
from test_cli_errors import one_error_line, photo, run, snapshot

from srlib.checkpoint import CheckpointLocked, load_checkpoint, load_model, save_checkpoint
from srlib.data import PatchDataset
from srlib.models import build
from srlib.train import fit, train_or_load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def images(seed: int, n: int = 3, size: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size + 6), dtype=np.uint8) for _ in range(n)]


def patches(seed: int = 0, patch_size: int = 12, scale: int = 2) -> PatchDataset:
    return PatchDataset(images(seed), scale, patch_size=patch_size, channels="y")


def espcn(scale: int = 2):
    torch.manual_seed(0)
    return build("espcn", scale, size="quick")


RUN = dict(steps=2, batch_size=4, progress=False)


# ---------------------------------------------------------------------------- what a run depends on


@pytest.mark.parametrize("other,phrase", [
    (lambda: patches(seed=1), "data=3 images, sha256 "),
    (lambda: patches(patch_size=16), "patch_size=12, this run asks for patch_size=16"),
])
def test_resume_with_other_data_or_patches_is_refused(tmp_path, other, phrase):
    path = tmp_path / "run.pt"
    fit(espcn(), patches(), checkpoint=path, **RUN)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=phrase) as refused:
        fit(espcn(), other(), checkpoint=path, **{**RUN, "steps": 4})
    assert "continue it with its own settings, or start a new run in another checkpoint file" in str(refused.value)
    assert snapshot(tmp_path) == before


def test_resume_with_the_same_data_goes_on(tmp_path):
    path = tmp_path / "run.pt"
    fit(espcn(), patches(), checkpoint=path, **RUN)
    assert fit(espcn(), patches(), checkpoint=path, **{**RUN, "steps": 4}).steps == [1, 2, 3, 4]


def test_data_for_another_scale_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="the training data are made for x3 but the model is x2; build the "
                                         "PatchDataset with scale=2"):
        fit(espcn(2), patches(scale=3), checkpoint=tmp_path / "run.pt", **RUN)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- the checksum covers everything


def trained(tmp_path, model_scale=2):
    path = tmp_path / "run.pt"
    fit(espcn(model_scale), patches(scale=model_scale), checkpoint=path, **RUN)
    return path


def first_adam_moment(ckpt):
    return next(iter(ckpt["optimizer_state"]["state"].values()))["exp_avg"]


@pytest.mark.parametrize("part,change", [
    ("optimizer state", lambda c: first_adam_moment(c).mul_(1e4)),
    ("history", lambda c: c["history"]["loss"].__setitem__(0, 0.0)),
    ("random state", lambda c: c["rng"]["torch"].__setitem__(100, 7)),
    ("step", lambda c: c.update(step=1)),
    ("facts", lambda c: c["facts"].update(lr=0.5)),
])
def test_damage_outside_the_weights_is_refused(tmp_path, part, change):
    path = trained(tmp_path)
    rewrite(path, change, sign=False)  # the stored checksum is the original one
    before = snapshot(tmp_path)
    for load in (load_checkpoint, load_model):
        with pytest.raises(ValueError, match="does not match its checksum: the file is damaged"):
            load(path)
    with pytest.raises(ValueError, match="does not match its checksum"):
        fit(espcn(), patches(), checkpoint=path, **{**RUN, "steps": 4})
    assert snapshot(tmp_path) == before


def test_a_flipped_bit_in_the_optimizer_state_is_refused(tmp_path):
    path = trained(tmp_path)
    moment = first_adam_moment(torch.load(path, weights_only=True)).numpy().tobytes()
    data = bytearray(path.read_bytes())
    at = bytes(data).find(moment[:32])
    assert at > 0
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its checksum"):
        fit(espcn(), patches(), checkpoint=path, **{**RUN, "steps": 4})


def test_x3_weights_relabelled_x4_are_refused(tmp_path):
    """VDSR's weights do not depend on the scale: relabelled, they would load and be used at x4."""
    path = tmp_path / "vdsr.pt"
    save_checkpoint(path, build("vdsr", 3, size="quick"), step=1)
    rewrite(path, lambda c: (c.update(scale=4), c["model_config"].update(scale=4)), sign=False)
    with pytest.raises(ValueError, match="does not match its checksum"):
        load_model(path)


def test_a_checkpoint_without_its_checksum_is_refused(tmp_path):
    path = trained(tmp_path)
    rewrite(path, lambda c: c.pop("sha256"), sign=False)
    with pytest.raises(ValueError, match=r"lacks its checksum \(sha256\): an incomplete or altered checkpoint"):
        load_checkpoint(path)


def test_resuming_a_version_1_checkpoint_says_what_is_unchecked(tmp_path, capsys):
    path = trained(tmp_path)
    rewrite(path, as_version_1)
    assert fit(espcn(), patches(), checkpoint=path, **{**RUN, "steps": 3}).steps == [1, 2, 3]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"note: {path} was written by an older srlib, whose checksum covers only the weights; its "
                   "optimizer state, history and random states are resumed unchecked"]
    assert load_checkpoint(path)["version"] == 2  # saved again in the current format


# ---------------------------------------------------------------------------- one writer at a time


def held_by_another_process(path) -> str:
    """A lock on ``path`` as a live process (this test's parent) holds it."""
    lock = f"{path}.lock"
    with open(lock, "w") as f:
        f.write(f"{os.getppid()} {socket.gethostname()}\n")
    return lock


def test_fit_respects_the_lock_of_another_run(tmp_path):
    path = trained(tmp_path)
    held_by_another_process(path)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointLocked, match=f"is being written by another training run \\(process {os.getppid()}"):
        fit(espcn(), patches(), checkpoint=path, **{**RUN, "steps": 4})
    assert snapshot(tmp_path) == before


def test_train_or_load_respects_the_lock_of_another_run(tmp_path):
    path = tmp_path / "run.pt"
    held_by_another_process(path)
    with pytest.raises(CheckpointLocked, match="wait for it to finish or write to another checkpoint"):
        train_or_load(espcn(), path, patches, steps=2, batch_size=4, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["run.pt.lock"]


def test_an_empty_lock_left_by_a_full_disk_is_taken_over(tmp_path, capsys):
    lock = tmp_path / "run.pt.lock"
    lock.write_bytes(b"")
    os.utime(lock, (time.time() - 3600,) * 2)  # an hour old: no run is still writing it
    fit(espcn(), patches(), checkpoint=tmp_path / "run.pt", **RUN)
    err = capsys.readouterr().err
    assert f"taking over {lock}: it is empty or unreadable, left by a run that could not write it" in err
    assert sorted(os.listdir(tmp_path)) == ["run.pt"]  # trained, and the lock is gone


def test_a_temporary_file_of_a_killed_save_is_removed_with_a_message(tmp_path, capsys):
    path = trained(tmp_path)
    dead = tmp_path / "run.pt.999999999.tmp"
    dead.write_bytes(b"half a checkpoint")
    alive = tmp_path / f"run.pt.{os.getppid()}.tmp"  # a process that is still running: not touched
    alive.write_bytes(b"being written")
    fit(espcn(), patches(), checkpoint=path, **{**RUN, "steps": 3})
    assert f"removed {dead}, left by process 999999999 which was stopped while saving" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == sorted(["run.pt", alive.name])


def test_a_checkpoint_in_a_folder_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "a" / "b" / "run.pt"
    fit(espcn(), patches(), checkpoint=path, **RUN)
    assert sorted(os.listdir(path.parent)) == ["run.pt"]


SAVE_UNDER_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
import torch
from srlib.checkpoint import save_checkpoint
from srlib.models import build
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
model = build("espcn", 2, size="quick")
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # as if the disk had 4 KB left
save_checkpoint(sys.argv[1], model, step=9)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs resource limits")
def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_old_checkpoint(tmp_path):
    path = trained(tmp_path)
    before = snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-c", SAVE_UNDER_A_FILE_SIZE_LIMIT, str(path)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}, timeout=120)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1
    assert last.startswith(f"OSError: could not write checkpoint '{path}' (")
    assert "the previous checkpoint, if any, is unchanged: free some disk space or save to another path" in last
    assert "PytorchStreamWriter" not in last and "inline_container" not in last
    assert snapshot(tmp_path) == before  # the old checkpoint, and no temporary file


# ---------------------------------------------------------------------------- a cosine run and its total


COSINE = dict(steps=4, lr_schedule="cosine", batch_size=4, progress=False)


def test_extending_a_finished_cosine_run_is_refused(tmp_path):
    """Refused rather than continued: the rate it ended with is about zero, and a cosine over the new
    total would jump back to half the base rate (0.5 x lr at step 4 of 8)."""
    path = tmp_path / "run.pt"
    history = fit(espcn(), patches(), checkpoint=path, **COSINE)
    assert history.lr[-1] < 0.2e-3  # the last step's rate, near the end of the cosine
    before = snapshot(tmp_path)
    message = (f"checkpoint '{path}' was trained with a cosine schedule over steps=4, this run asks for steps=8: "
               "the rate of every step depends on the total, so it would jump instead of continuing; ask for "
               "steps=4 to continue or load it, or start a new run in another checkpoint file")
    with pytest.raises(ValueError) as refused:
        fit(espcn(), patches(), checkpoint=path, **{**COSINE, "steps": 8})
    assert str(refused.value) == message
    with pytest.raises(ValueError) as refused:
        train_or_load(espcn(), path, patches, **{**COSINE, "steps": 8})
    assert str(refused.value) == message
    assert snapshot(tmp_path) == before
    model, loaded = train_or_load(espcn(), path, patches, **COSINE)  # the way out: its own total
    assert loaded.steps == [1, 2, 3, 4]


def test_an_interrupted_cosine_run_continues_only_with_its_total(tmp_path):
    path = tmp_path / "run.pt"
    save_every = dict(COSINE, steps=6, checkpoint_every=2)
    fit(espcn(), patches(), checkpoint=path, **save_every)
    rewrite(path, lambda c: c["facts"].update(finished=False))  # as if stopped; re-signed
    with pytest.raises(ValueError, match="cosine schedule over steps=6, this run asks for steps=10"):
        fit(espcn(), patches(), checkpoint=path, **{**save_every, "steps": 10})


def test_a_step_schedule_may_still_be_extended(tmp_path):
    path = tmp_path / "run.pt"
    step = dict(BASE, lr_schedule="step", milestones=[1])
    fit(tiny(), Pairs(), checkpoint=path, **step)
    assert fit(tiny(), Pairs(), checkpoint=path, **{**step, "steps": 4}).steps == [1, 2, 3, 4]


# ---------------------------------------------------------------------------- the command line

TINY = ["train", "espcn", "--scale", "2", "--steps", "3", "--batch-size", "2", "--patch-size", "24", "--no-progress"]


@pytest.fixture
def cli_run(capsys, tmp_path):
    out = tmp_path / "run.pt"
    assert run(capsys, *TINY, "--out", out)[0] == 0
    return out


def test_train_says_where_it_resumes(capsys, cli_run):
    code, stdout, _ = run(capsys, *TINY, "--out", cli_run, "--steps", "5")
    assert code == 0
    assert stdout.splitlines()[0] == f"resuming at step 3 of 5 ({cli_run})"


def test_train_on_a_finished_checkpoint_says_there_is_nothing_to_do(capsys, cli_run):
    before = snapshot(cli_run.parent)
    code, stdout, _ = run(capsys, *TINY, "--out", cli_run)
    assert code == 0 and stdout.splitlines()[0].startswith(f"Loaded espcn x2 from {cli_run} ")
    assert stdout.splitlines()[0].endswith("(3 steps, trained in 0.0 min); skipping training.")
    assert stdout.splitlines()[1].startswith("done: 3 steps")
    assert snapshot(cli_run.parent) == before


def test_train_resume_with_another_patch_size_is_refused(capsys, cli_run):
    before = snapshot(cli_run.parent)
    code, _, err = run(capsys, *TINY, "--out", cli_run, "--steps", "5", "--patch-size", "30")
    assert code == 2
    one_error_line(err, "trained with patch_size=24, this run asks for patch_size=30; continue it with its own "
                        "settings, or start a new run in another checkpoint file (--out)")
    assert snapshot(cli_run.parent) == before


def test_train_resume_with_other_data_is_refused(capsys, cli_run, tmp_path):
    for i in range(3):
        photo(tmp_path / "data" / "Mine" / f"{i}.png", seed=i, size=(40, 50))
    before = snapshot(cli_run.parent)
    code, _, err = run(capsys, *TINY, "--out", cli_run, "--steps", "5", "--data", "Mine", "--root",
                       tmp_path / "data")
    assert code == 2
    line = one_error_line(err, "this run asks for data=3 images, sha256 ")
    assert line.endswith("start a new run in another checkpoint file (--data)")
    assert snapshot(cli_run.parent) == before


def test_ctrl_c_before_the_first_step_does_not_claim_a_checkpoint(capsys, tmp_path, monkeypatch):
    import srlib.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(srlib.train, "_batches", interrupted)
    code, _, err = run(capsys, *TINY, "--out", tmp_path / "run.pt")
    assert code == 130
    assert err.strip() == "interrupted: stopped before the first step, nothing was saved"
    assert list(tmp_path.iterdir()) == []


def test_a_run_of_the_command_while_a_notebook_trains_is_refused(capsys, cli_run):
    """The notebook's fit holds the lock (as a live process would): the command does not write."""
    held_by_another_process(cli_run)
    before = snapshot(cli_run.parent)
    code, _, err = run(capsys, *TINY, "--out", cli_run, "--steps", "5")
    assert code == 1
    one_error_line(err, "is being written by another training run")
    assert snapshot(cli_run.parent) == before


def test_a_folder_where_the_lock_goes_is_one_line(capsys, tmp_path):
    (tmp_path / "run.pt.lock").mkdir()
    code, _, err = run(capsys, *TINY, "--out", tmp_path / "run.pt")
    assert code == 1
    one_error_line(err, f"'{tmp_path / 'run.pt.lock'}' is a folder, but srlib keeps the lock of "
                        f"'{tmp_path / 'run.pt'}' there; move the folder away or write to another checkpoint")
    assert sorted(os.listdir(tmp_path)) == ["run.pt.lock"]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write in read-only folders")
def test_a_trained_checkpoint_in_a_read_only_folder_still_loads(tmp_path, capsys):
    path = trained(tmp_path)
    tmp_path.chmod(0o500)
    try:
        _, history = train_or_load(espcn(), path, patches, **RUN)
    finally:
        tmp_path.chmod(0o700)
    assert history.steps == [1, 2] and "skipping training" in capsys.readouterr().out


def test_train_or_load_loads_while_another_run_holds_the_lock(tmp_path, capsys):
    """Reading a complete checkpoint needs no lock: it is replaced whole, by a rename."""
    path = trained(tmp_path)
    held_by_another_process(path)
    _, history = train_or_load(espcn(), path, patches, **RUN)
    assert history.steps == [1, 2] and "skipping training" in capsys.readouterr().out


def test_train_or_load_overwrite_continues_its_own_model_and_replaces_another(tmp_path):
    path = trained(tmp_path)
    _, history = train_or_load(espcn(), path, patches, overwrite=True, **{**RUN, "steps": 3})
    assert history.steps == [1, 2, 3]  # the same model: continued, not replaced
    torch.manual_seed(0)
    _, history = train_or_load(build("espcn", 2, size="quick", n1=16), path, patches, overwrite=True, **RUN)
    assert history.steps == [1, 2] and load_checkpoint(path)["model_config"]["n1"] == 16


@pytest.mark.parametrize("change,phrase", [
    (dict(lr=1e-2), "trained with lr=0.001, this run asks for lr=0.01"),
    (dict(lr_schedule="cosine"), "lr_schedule=None, this run asks for lr_schedule=cosine"),
    (dict(seed=3), "seed=0, this run asks for seed=3"),
    (dict(optimizer=lambda params: torch.optim.SGD(params, lr=0.1)), "optimizer=adam, this run asks for "
                                                                     "optimizer=custom"),
])
def test_train_or_load_does_not_pass_off_another_recipe_as_this_one(tmp_path, change, phrase):
    """A changed recipe under an old file name: the old run is not loaded as the new recipe's result."""
    path = trained(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=phrase):
        train_or_load(espcn(), path, patches, **{**RUN, **change})
    assert snapshot(tmp_path) == before
    _, history = train_or_load(espcn(), path, patches, overwrite=True, **{**RUN, **change})  # asked: a new run
    assert history.steps == [1, 2] and load_checkpoint(path)["facts"]["seed"] == change.get("seed", 0)


LOCK_UNDER_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
from srlib.checkpoint import checkpoint_lock
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (5, hard))  # room for 5 bytes of "<pid> <host>"
try:
    with checkpoint_lock(sys.argv[1]):
        pass
except OSError as error:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print(error)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs resource limits")
def test_a_full_disk_while_locking_leaves_no_empty_lock(tmp_path):
    done = subprocess.run([sys.executable, "-c", LOCK_UNDER_A_FILE_SIZE_LIMIT, str(tmp_path / "run.pt")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60)
    assert done.stdout.strip() == (f"could not write the lock file '{tmp_path / 'run.pt.lock'}' (the disk is full); "
                                   "free some disk space or write the checkpoint elsewhere")
    assert list(tmp_path.iterdir()) == []  # no empty lock to block the next run
