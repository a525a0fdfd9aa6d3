"""The command line under bad input: one line on stderr naming the problem and the fix, no traceback,
exit code 2 for bad arguments (before any work) and 1 for failures; no user file lost or overwritten."""
import os
import socket
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import flip_weight_byte
from srlib.checkpoint import save_checkpoint, weights_sha256
from srlib.cli import UsageError, main
from srlib.models import build


def run(capsys, *argv):
    """Exit code, stdout and stderr of ``python -m srlib argv...``, run in this process."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str, phrase: str) -> str:
    """The single stderr line, checked: it starts with "error:", says ``phrase`` and is no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert phrase in lines[0], err
    return lines[0]


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes: compared before and after, nothing may change."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def checkpoint(tmp_path):
    """An untrained ESPCN x2 checkpoint, as `train espcn --scale 2 --batch-size 2 --seed 7` would record it."""
    path = tmp_path / "espcn_x2.pt"
    torch.manual_seed(0)
    save_checkpoint(path, build("espcn", 2, size="quick"), step=1,
                    facts=dict(steps=1, lr=1e-3, batch_size=2, seed=7, optimizer="adam"))
    return path


def photo(path, seed=0, size=(20, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------------------- train: arguments

TRAIN = ["train", "espcn", "--scale", "2", "--no-progress"]


@pytest.mark.parametrize("args,phrase", [
    (["--steps", "0"], "--steps: must be at least 1, got 0"),
    (["--steps", "-5"], "--steps: must be at least 1, got -5"),
    (["--steps", "ten"], "--steps: expected a whole number"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--batch-size", "-4"], "--batch-size: must be at least 1"),
    (["--patch-size", "0"], "--patch-size: must be at least 1"),
    (["--patch-size", "1"], "--patch-size 1 is smaller than the scale 2"),
    (["--size", "quik"], "ESPCN has no size 'quik'; choose one of: paper, quick"),
    (["--lr", "0"], "--lr: must be a finite number above 0"),
    (["--lr", "-0.1"], "--lr: must be a finite number above 0"),
    (["--lr", "nan"], "--lr: must be a finite number above 0, got nan"),
    (["--lr", "inf"], "--lr: must be a finite number above 0, got inf"),
    (["--lr", "fast"], "--lr: expected a number"),
    (["--eval-every", "0"], "--eval-every: must be at least 1"),
    (["--seed", "-1"], "--seed: must be between 0 and 4294967295"),
    (["--seed", str(2**40)], "--seed: must be between 0 and 4294967295"),
    (["--device", "gpu"], "--device gpu: unknown device"),
    (["--budget", "huge"], "invalid choice: 'huge'"),
    (["--stepz", "3"], "unrecognized arguments: --stepz 3"),
    (["--data", "NoSuchSet"], "data set NoSuchSet not found"),
])
def test_bad_train_arguments_are_refused_before_any_work(capsys, tmp_path, args, phrase):
    out = tmp_path / "run.pt"
    code, stdout, err = run(capsys, *TRAIN, "--out", out, "--root", tmp_path, *args)
    assert code == 2
    one_error_line(err, phrase)
    assert "training" not in stdout and not out.exists() and snapshot(tmp_path) == {}


@pytest.mark.parametrize("argv,phrase", [
    (["train", "espcn", "--scale", "5"], "ESPCN supports scales (2, 3, 4), got 5"),
    (["train", "espcn", "--scale", "0"], "supports scales"),
    (["train", "drn", "--scale", "3"], "supports scales (4, 8)"),
    (["train", "nosuchnet", "--scale", "2"], "unknown model 'nosuchnet'; choose one of"),
    (["train", "espcn"], "required: --scale"),
    (["trian", "espcn"], "invalid choice: 'trian'"),
    ([], "required: command"),
])
def test_bad_models_scales_and_commands(capsys, argv, phrase):
    code, _, err = run(capsys, *argv)
    assert code == 2
    one_error_line(err, phrase)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(capsys, tmp_path):
    code, _, err = run(capsys, *TRAIN, "--device", "cuda", "--out", tmp_path / "run.pt")
    assert code == 2
    one_error_line(err, "CUDA is not available; use cpu")


def test_unknown_budget_in_the_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_BUDGET", "bogus")
    code, _, err = run(capsys, *TRAIN, "--out", tmp_path / "run.pt")
    assert code == 2
    one_error_line(err, "SRLIB_BUDGET='bogus' is not a budget")


def test_out_that_is_a_folder(capsys, tmp_path):
    code, _, err = run(capsys, *TRAIN, "--out", tmp_path)
    assert code == 2
    one_error_line(err, f"--out {tmp_path} is a folder; give a checkpoint file")


def test_out_below_a_file(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run(capsys, *TRAIN, "--out", tmp_path / "notes.txt" / "run.pt")
    assert code == 2
    one_error_line(err, "notes.txt is a file, not a folder")
    assert snapshot(tmp_path) == {"notes.txt": b"mine"}


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a folder nobody can write in (/proc)")
def test_out_in_a_folder_nobody_can_write(capsys):
    code, _, err = run(capsys, *TRAIN, "--out", "/proc/srlib-test/run.pt")
    assert code == 2
    one_error_line(err, "cannot create files in /proc")


def test_patch_larger_than_the_training_images(capsys, tmp_path):
    code, _, err = run(capsys, *TRAIN, "--patch-size", "4000", "--steps", "1", "--out", tmp_path / "run.pt")
    assert code == 2
    one_error_line(err, "is smaller than the patch size 4000")
    assert not (tmp_path / "run.pt").exists() and not (tmp_path / "run.pt.lock").exists()


# ---------------------------------------------------------------------------- train: an existing checkpoint

RESUME = ["train", "espcn", "--scale", "2", "--batch-size", "2", "--seed", "7", "--steps", "5", "--no-progress"]


@pytest.mark.parametrize("change,phrase", [
    (["--lr", "0.01"], "trained with lr=0.001, this run asks for lr=0.01"),
    (["--batch-size", "4"], "trained with batch_size=2, this run asks for batch_size=4"),
    (["--seed", "8"], "trained with seed=7, this run asks for seed=8"),
    (["--lr", "0.01", "--seed", "8"], "lr=0.001, seed=7, this run asks for lr=0.01, seed=8"),
])
def test_resume_with_other_settings_is_refused_and_keeps_the_checkpoint(capsys, checkpoint, change, phrase):
    before = snapshot(checkpoint.parent)
    code, _, err = run(capsys, *RESUME, "--out", checkpoint, *change)
    assert code == 2
    line = one_error_line(err, phrase)
    assert "--out" in line  # the way out: another checkpoint
    assert snapshot(checkpoint.parent) == before


def test_resume_of_another_configuration_is_refused(capsys, tmp_path):
    out = tmp_path / "narrow.pt"
    save_checkpoint(out, build("espcn", 2, size="quick", n1=16), facts=dict(lr=1e-3, batch_size=2, seed=7))
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *RESUME, "--out", out)
    assert code == 2
    one_error_line(err, "with n1=16, model is espcn x2 with n1=64; choose another --out")
    assert snapshot(tmp_path) == before


def test_resume_at_another_scale_is_refused(capsys, checkpoint):
    before = snapshot(checkpoint.parent)
    code, _, err = run(capsys, "train", "espcn", "--scale", "3", "--out", checkpoint, "--no-progress")
    assert code == 2
    one_error_line(err, "holds espcn x2, model is espcn x3; choose another --out")
    assert snapshot(checkpoint.parent) == before


@pytest.mark.parametrize("content,phrase", [
    (b"", "could not be read as an srlib checkpoint"),
    (b"\x89PNG\r\n\x1a\n not a checkpoint", "could not be read as an srlib checkpoint"),
])
def test_out_that_is_not_a_checkpoint_is_left_alone(capsys, tmp_path, content, phrase):
    out = tmp_path / "holiday.png"
    out.write_bytes(content)
    code, _, err = run(capsys, *RESUME, "--out", out)
    assert code == 1
    line = one_error_line(err, phrase)
    assert "left as it is: choose another --out" in line
    assert snapshot(tmp_path) == {"holiday.png": content}


def test_damaged_checkpoint_is_refused_not_continued(capsys, checkpoint):
    damaged = flip_weight_byte(checkpoint)
    code, _, err = run(capsys, *RESUME, "--out", checkpoint)
    assert code == 1
    one_error_line(err, "does not match its checksum")
    assert checkpoint.read_bytes() == damaged


def test_checkpoint_locked_by_a_running_training_is_not_touched(capsys, checkpoint):
    lock = checkpoint.with_name(checkpoint.name + ".lock")
    lock.write_text(f"{os.getpid()} {socket.gethostname()}\n")  # this process is alive
    before = snapshot(checkpoint.parent)
    code, stdout, err = run(capsys, *RESUME, "--out", checkpoint)
    assert code == 1
    one_error_line(err, f"is being written by another training run (process {os.getpid()}")
    assert snapshot(checkpoint.parent) == before and "training" not in stdout


# ---------------------------------------------------------------------------- train: real (short) runs

TINY = ["train", "espcn", "--scale", "2", "--steps", "3", "--batch-size", "2", "--patch-size", "24", "--no-progress"]


@pytest.mark.slow
def test_the_same_seed_gives_bit_identical_weights(capsys, tmp_path):
    for name in ("a.pt", "b.pt"):
        assert run(capsys, *TINY, "--seed", "7", "--out", tmp_path / name)[0] == 0
    first, second = (torch.load(tmp_path / name, weights_only=True) for name in ("a.pt", "b.pt"))
    assert list(first["model_state"]) == list(second["model_state"])
    for key, tensor in first["model_state"].items():
        assert torch.equal(tensor, second["model_state"][key]), key
    assert weights_sha256(first["model_state"]) == weights_sha256(second["model_state"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no lock or .tmp left


@pytest.mark.slow
def test_a_diverging_run_ends_with_one_line(capsys, tmp_path):
    code, _, err = run(capsys, *TINY, "--lr", "1e30", "--out", tmp_path / "run.pt")
    assert code == 1
    one_error_line(err, "loss became")
    assert list(tmp_path.iterdir()) == []  # no checkpoint of a broken state, no lock left


@pytest.mark.slow
def test_a_stale_lock_is_taken_over(capsys, tmp_path):
    lock = tmp_path / "run.pt.lock"
    lock.write_text(f"999999999 {socket.gethostname()}\n")  # no process has this id
    code, _, err = run(capsys, *TINY, "--out", tmp_path / "run.pt")
    assert code == 0
    assert "taking over" in err and "999999999" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


# ---------------------------------------------------------------------------- upscale


def test_upscale_missing_input(capsys, checkpoint, tmp_path):
    code, _, err = run(capsys, "upscale", checkpoint, tmp_path / "missing.png", "--out-dir", tmp_path / "out")
    assert code == 2
    one_error_line(err, "no image file at")
    assert not (tmp_path / "out").exists()


def test_upscale_input_that_is_a_folder(capsys, checkpoint, tmp_path):
    code, _, err = run(capsys, "upscale", checkpoint, tmp_path, "--out-dir", tmp_path / "out")
    assert code == 2
    one_error_line(err, "no image file at")


@pytest.mark.parametrize("model,phrase,code", [
    ("nowhere.pt", "no checkpoint at 'nowhere.pt'", 2),
    ("photo", "could not be read as an srlib checkpoint", 1),
])
def test_upscale_with_a_bad_model(capsys, tmp_path, model, phrase, code):
    image = photo(tmp_path / "photo.png")
    exit_code, _, err = run(capsys, "upscale", image if model == "photo" else model, image,
                            "--out-dir", tmp_path / "out")
    assert exit_code == code
    one_error_line(err, phrase)
    assert not (tmp_path / "out").exists()


def test_upscale_with_a_damaged_checkpoint(capsys, checkpoint, tmp_path):
    damaged = flip_weight_byte(checkpoint)
    code, _, err = run(capsys, "upscale", checkpoint, photo(tmp_path / "p.png"), "--out-dir", tmp_path / "out")
    assert code == 1
    one_error_line(err, "does not match its checksum")
    assert checkpoint.read_bytes() == damaged and not (tmp_path / "out").exists()


def test_upscale_out_dir_that_is_a_file(capsys, checkpoint, tmp_path):
    image = photo(tmp_path / "photo.png")
    (tmp_path / "out").write_text("mine")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "upscale", checkpoint, image, "--out-dir", tmp_path / "out")
    assert code == 2
    one_error_line(err, "is a file, not a folder; choose another --out-dir")
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a folder nobody can write in (/proc)")
def test_upscale_out_dir_nobody_can_write(capsys, checkpoint, tmp_path):
    code, _, err = run(capsys, "upscale", checkpoint, photo(tmp_path / "p.png"), "--out-dir", "/proc/srlib-test")
    assert code == 2
    one_error_line(err, "cannot create files in /proc")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write in read-only folders")
def test_upscale_read_only_out_dir(capsys, checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        code, _, err = run(capsys, "upscale", checkpoint, photo(tmp_path / "p.png"), "--out-dir", out)
    finally:
        out.chmod(0o755)
    assert code == 2
    one_error_line(err, "cannot create files in")


def test_upscale_keeps_an_existing_output(capsys, checkpoint, tmp_path):
    image = photo(tmp_path / "photo.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "photo_x2.png").write_bytes(b"my earlier result")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "upscale", checkpoint, image, "--out-dir", tmp_path / "out")
    assert code == 2
    one_error_line(err, "photo_x2.png already exists; give --overwrite to replace")
    assert snapshot(tmp_path) == before


def test_upscale_overwrites_only_when_asked(capsys, checkpoint, tmp_path):
    image = photo(tmp_path / "photo.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "photo_x2.png").write_bytes(b"my earlier result")
    assert run(capsys, "upscale", checkpoint, image, "--out-dir", tmp_path / "out", "--overwrite")[0] == 0
    with Image.open(tmp_path / "out" / "photo_x2.png") as im:
        assert im.size == (60, 40)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo_x2.png"]  # no .tmp left


def test_upscale_never_replaces_an_input(capsys, checkpoint, tmp_path):
    image = photo(tmp_path / "photo.png")
    earlier = photo(tmp_path / "photo_x2.png", seed=1)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "upscale", checkpoint, image, earlier, "--out-dir", tmp_path, "--overwrite")
    assert code == 2
    one_error_line(err, "would replace one of the input images")
    assert snapshot(tmp_path) == before


def test_upscale_inputs_with_the_same_name_do_not_collide(capsys, checkpoint, tmp_path):
    first, second = photo(tmp_path / "a" / "photo.png", seed=1), photo(tmp_path / "b" / "photo.png", seed=2)
    code, out, err = run(capsys, "upscale", checkpoint, first, second, "--out-dir", tmp_path / "out")
    assert code == 0 and err == ""
    assert "writing it as photo-2_x2.png" in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["photo-2_x2.png", "photo_x2.png"]
    assert (tmp_path / "out" / "photo_x2.png").read_bytes() != (tmp_path / "out" / "photo-2_x2.png").read_bytes()


@pytest.mark.parametrize("bad_bytes,phrase", [
    (b"", "cannot read it as an image"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cannot read it as an image"),
    (b"this is a text file", "cannot read it as an image"),
])
def test_upscale_goes_on_past_a_bad_input_and_counts_it(capsys, checkpoint, tmp_path, bad_bytes, phrase):
    good = [photo(tmp_path / "in" / "one.png", 1), photo(tmp_path / "in" / "three.png", 3)]
    bad = tmp_path / "in" / "two.png"
    bad.write_bytes(bad_bytes)
    code, out, err = run(capsys, "upscale", checkpoint, good[0], bad, good[1], "--out-dir", tmp_path / "out")
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("failed:") and str(bad) in lines[0] and phrase in lines[0]
    assert lines[1].startswith("error: 1 of 3 images could not be upscaled") and str(bad) in lines[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one_x2.png", "three_x2.png"]
    assert bad.read_bytes() == bad_bytes


@pytest.mark.parametrize("chop", ["0", "-3", "many"])
def test_upscale_bad_tile_size(capsys, checkpoint, tmp_path, chop):
    code, _, err = run(capsys, "upscale", checkpoint, photo(tmp_path / "p.png"), "--chop", chop)
    assert code == 2
    one_error_line(err, "--chop")


def test_upscale_tiled_equals_whole(capsys, checkpoint, tmp_path):
    image = photo(tmp_path / "photo.png", size=(40, 52))
    assert run(capsys, "upscale", checkpoint, image, "--out-dir", tmp_path / "whole")[0] == 0
    assert run(capsys, "upscale", checkpoint, image, "--out-dir", tmp_path / "tiled", "--chop", "16")[0] == 0
    with Image.open(tmp_path / "whole" / "photo_x2.png") as a, Image.open(tmp_path / "tiled" / "photo_x2.png") as b:
        assert np.array_equal(np.array(a), np.array(b))


# ---------------------------------------------------------------------------- evaluate, download, --debug


@pytest.mark.parametrize("argv,phrase", [
    (["evaluate", "bicubic"], "give --scale to evaluate bicubic on its own"),
    (["evaluate", "bicubic", "--scale", "0"], "--scale: must be at least 1"),
    (["evaluate", "bicubic", "--scale", "2", "--sets", "NoSuchSet"], "data set NoSuchSet not found"),
    (["evaluate", "missing.pt"], "no checkpoint at 'missing.pt'"),
    (["evaluate", "bicubic", "--scale", "2", "--chop", "0"], "--chop: must be at least 8"),
    (["download", "NoSuchSet"], "unknown data set 'NoSuchSet'"),
])
def test_bad_evaluate_and_download_arguments(capsys, tmp_path, argv, phrase):
    code, _, err = run(capsys, *argv, "--root", tmp_path)
    assert code == 2
    one_error_line(err, phrase)


def test_evaluate_at_another_scale_than_trained(capsys, checkpoint):
    code, _, err = run(capsys, "evaluate", checkpoint, "--scale", "3")
    assert code == 2
    one_error_line(err, "was trained for x2, not x3; leave --scale out or use --scale 2")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_flag_shows_the_exception(tmp_path, where):
    command = ["evaluate", "bicubic", "--scale", "2", "--sets", "NoSuchSet", "--root", str(tmp_path)]
    with pytest.raises(UsageError, match="data set NoSuchSet"):
        main(["--debug", *command] if where == "before" else [*command, "--debug"])


def test_debug_environment_variable_shows_the_exception(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        main(["upscale", str(tmp_path / "missing.pt"), str(photo(tmp_path / "p.png"))])


def test_upscale_removes_what_a_killed_upscale_left(capsys, checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    left = out / "in_x2.png.999999999.tmp"  # a run killed while writing its PNG
    left.write_bytes(b"half a picture")
    code, _, err = run(capsys, "upscale", checkpoint, photo(tmp_path / "in.png"), "--out-dir", out)
    assert code == 0 and f"removed {left}, left by process 999999999" in err
    assert sorted(p.name for p in out.iterdir()) == ["in_x2.png"]
