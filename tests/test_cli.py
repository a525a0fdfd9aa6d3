"""End to end: `python -m srlib train`, then `evaluate`, then `upscale`, on the embedded data."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import require_data
from srlib.cli import main

# End to end: a real (short) training run through the command line.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "espcn_x2.pt"
    assert main(["train", "espcn", "--scale", "2", "--steps", "12", "--eval-every", "6", "--batch-size", "4",
                 "--patch-size", "24", "--out", str(out), "--no-progress"]) == 0
    return out


def test_train_writes_a_checkpoint_and_resumes(checkpoint, capsys):
    assert checkpoint.is_file() and not checkpoint.with_suffix(".pt.tmp").exists()
    # Asking for more steps continues the same run from step 12.
    assert main(["train", "espcn", "--scale", "2", "--steps", "14", "--eval-every", "7", "--batch-size", "4",
                 "--patch-size", "24", "--out", str(checkpoint), "--no-progress"]) == 0
    assert "14 steps" in capsys.readouterr().out


def test_evaluate_prints_a_table_with_bicubic_alongside(checkpoint, capsys):
    assert main(["evaluate", str(checkpoint), "bicubic", "--sets", "embedded", "--no-progress"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Y channel" in lines[0]
    bicubic_row = next(line for line in lines if line.startswith("bicubic"))
    psnr = float(bicubic_row.split()[2])
    assert 30 < psnr < 36  # bicubic x2 on the embedded photographs


def test_upscale_writes_pngs_of_the_right_size(checkpoint, tmp_path, capsys):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "mine.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "gray.png")
    out_dir = tmp_path / "out"
    assert main(["upscale", str(checkpoint), str(tmp_path / "mine.png"), str(tmp_path / "gray.png"),
                 "--out-dir", str(out_dir)]) == 0
    with Image.open(out_dir / "mine_x2.png") as im:
        assert im.size == (60, 40) and im.mode == "RGB"
    with Image.open(out_dir / "gray_x2.png") as im:
        assert im.size == (60, 40) and im.mode == "L"
    assert sorted(p.name for p in out_dir.iterdir()) == ["gray_x2.png", "mine_x2.png"]


def test_bad_requests_fail_with_a_message(checkpoint, tmp_path, capsys):
    assert main(["train", "drn", "--scale", "3"]) == 2
    assert "supports scales (4, 8)" in capsys.readouterr().err
    assert main(["upscale", str(checkpoint), str(tmp_path / "missing.png")]) == 2
    assert "no image file" in capsys.readouterr().err
    assert main(["evaluate", "bicubic", "--sets", "NoSuchSet", "--scale", "2", "--root", str(tmp_path)]) == 2
    assert "download NoSuchSet" in capsys.readouterr().err
    assert main(["evaluate", str(checkpoint), "--scale", "3"]) == 2
    assert "trained for x2, not x3" in capsys.readouterr().err


def test_bicubic_on_set5_shows_the_published_baselines():
    require_data("Set5")
    out = subprocess.run([sys.executable, "-m", "srlib", "evaluate", "bicubic", "--scale", "4", "--sets", "Set5",
                          "--no-progress"], capture_output=True, text=True, check=True).stdout
    row = out.splitlines()[-1].split()
    assert row[0] == "bicubic" and row[1] == "x4"
    assert abs(float(row[2]) - 28.42) <= 0.02 and abs(float(row[4]) - 0.8104) <= 0.002
