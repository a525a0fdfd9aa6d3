"""The shipped reference models: safe files, complete provenance, and the figures they record.

Every recorded PSNR is re-measured here to 0.01 dB: a change to the evaluation protocol, the
image loader, the bicubic kernel or a model's code that moves a number the book prints fails.
"""
import shutil

import pytest
import torch

from srlib.data import data_root
from srlib.models import count_parameters
from srlib.reference import (
    RECIPES,
    RECORD_TOLERANCE_DB,
    WEIGHTS_DIR,
    load_reference,
    measure_reference,
    recorded_result,
    reference_info,
    reference_names,
    training_cost_table,
    training_costs,
)

TOLERANCE_DB = RECORD_TOLERANCE_DB
MAX_BYTES = 8 * 2**20  # MDSR baseline, the largest, is 6.5 MB


def test_every_recipe_has_shipped_weights():
    assert reference_names() == list(RECIPES)


@pytest.fixture(scope="module", params=list(RECIPES))
def reference(request):
    name = request.param
    return name, load_reference(name), reference_info(name)


_measured = {}


def measured(name, model):
    """Each model is measured once per test session (SRCNN on Set5 takes a few seconds)."""
    if name not in _measured:
        _measured[name] = measure_reference(model)
    return _measured[name]


def test_weights_are_small_half_precision_safetensors(reference):
    name, _, _ = reference
    path = WEIGHTS_DIR / f"{name}.safetensors"
    assert path.stat().st_size <= MAX_BYTES
    from safetensors.torch import load_file  # refuses anything but the plain tensor format
    assert {t.dtype for t in load_file(path).values()} == {torch.float16}


def test_provenance_says_how_the_model_was_made(reference):
    name, model, info = reference
    recipe = RECIPES[name]
    for key in ("model", "config", "scale", "recipe", "schedule", "data", "loss", "seconds", "commit", "command",
                "sha256", "measured", "torch_version"):
        assert info.get(key) not in (None, ""), f"{name}.json lacks {key!r}"
    assert info["recipe"]["steps"] == recipe.steps and info["model"] == recipe.model
    assert info["command"] == f"python scripts/train_reference.py {name}"
    assert "uncommitted" not in info["commit"], f"{name} was trained from a working tree with uncommitted changes"
    assert model.srlib_name == recipe.model and model.scale == recipe.scale
    assert count_parameters(model) > 0 and not model.training


def test_recorded_figures_are_measured_again_to_a_hundredth_of_a_decibel(reference):
    name, model, info = reference
    now_measured = measured(name, model)
    recorded = info["measured"]
    if (data_root() / "Set5").is_dir():
        assert "Set5" in now_measured and "Set5" in recorded
    for set_name, now in now_measured.items():
        then = recorded[set_name]
        for key in ("psnr", "bicubic_psnr"):
            assert now[key] == pytest.approx(then[key], abs=TOLERANCE_DB), f"{name} {set_name} {key}"
        for image, row in now["per_image"].items():
            assert row["psnr"] == pytest.approx(then["per_image"][image]["psnr"], abs=TOLERANCE_DB), f"{name} {image}"
        assert now["ssim"] == pytest.approx(then["ssim"], abs=1e-4), f"{name} {set_name} ssim"


def test_a_figure_off_by_two_hundredths_is_caught(reference, tmp_path):
    """The check above is not vacuous: a recorded number moved by 0.02 dB fails it."""
    name, model, info = reference
    now = measured(name, model)["embedded"]["psnr"]
    assert now != pytest.approx(info["measured"]["embedded"]["psnr"] + 0.02, abs=TOLERANCE_DB)


def test_a_damaged_weights_file_is_refused(reference, tmp_path):
    name, _, _ = reference
    weights = tmp_path / f"{name}.safetensors"
    shutil.copy(WEIGHTS_DIR / f"{name}.safetensors", weights)
    shutil.copy(WEIGHTS_DIR / f"{name}.json", tmp_path / f"{name}.json")
    assert load_reference(weights).scale == RECIPES[name].scale  # a copy with its provenance loads
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte inside the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the checksum"):
        load_reference(weights)


def test_weights_without_provenance_or_with_broken_provenance_are_refused(tmp_path):
    name = next(iter(RECIPES))
    weights = tmp_path / "alone.safetensors"
    shutil.copy(WEIGHTS_DIR / f"{name}.safetensors", weights)
    with pytest.raises(FileNotFoundError, match="no provenance file alone.json"):
        load_reference(weights)
    (tmp_path / "alone.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_reference(weights)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="espcn-x3"):
        load_reference("espcn-x5")



def test_the_command_line_takes_reference_models_by_name(capsys, tmp_path, monkeypatch):
    from srlib.cli import main

    assert main(["evaluate", "espcn-x3", "--sets", "embedded", "--no-progress"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("espcn-x3"))
    recorded = reference_info("espcn-x3")["measured"]["embedded"]["psnr"]
    assert f"{recorded:.2f} / " in row
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in RECIPES)
    monkeypatch.chdir(tmp_path)
    from PIL import Image
    Image.new("RGB", (20, 16)).save("photo.png")
    assert main(["upscale", "espcn-x5", "photo.png"]) == 2
    assert "reference models: srcnn-x3" in capsys.readouterr().err
    assert main(["upscale", "espcn-x3", "photo.png"]) == 0  # one line from a photo to its enlargement
    assert Image.open(tmp_path / "upscaled" / "photo_x3.png").size == (60, 48)


def test_recorded_figures_are_checked_where_the_set_is_present(tmp_path):
    """A lab prints recorded Set5 figures; where Set5 is present they are measured again first."""
    if not (data_root() / "Set5").is_dir():
        pytest.skip("Set5 is not under the data root")
    assert recorded_result("espcn-x3", "Set5").mean_psnr == pytest.approx(
        reference_info("espcn-x3")["measured"]["Set5"]["psnr"])
    wrong = tmp_path / "Set5"  # the same names, other pictures: the record no longer holds
    wrong.mkdir()
    for image in (data_root() / "Set5").iterdir():
        shutil.copy(image, wrong / image.name)
    first = sorted(wrong.iterdir())[0]
    shutil.copy(sorted(wrong.iterdir())[1], first)
    with pytest.raises(ValueError, match="was recorded with its weights"):
        recorded_result("espcn-x3", "Set5", root=tmp_path)


def test_training_costs_come_from_the_records_and_exact_counts():
    costs = training_costs(["fsrcnn-x3", "espcn-x3"])
    fsrcnn, espcn = costs["fsrcnn-x3"], costs["espcn-x3"]
    assert round(fsrcnn.macs_per_pixel) == 1_409 and round(espcn.macs_per_pixel) == 2_514
    assert fsrcnn.patches == 45_000 * 32 and fsrcnn.training_pixels == 45_000 * 32 * 48**2
    assert espcn.parameters == 22_729 and round(espcn.set5_psnr, 2) == 32.21
    table = training_cost_table(costs).splitlines()
    assert len(table) == 4 and table[1].startswith("-----") and table[3].startswith("espcn-x3")


def test_a_run_with_another_seed_cannot_replace_the_shipped_reference():
    from srlib.reference import train_reference

    with pytest.raises(ValueError, match="with seed 1 is not the reference: give it another out_dir"):
        train_reference("espcn-x4", seed=1)
    with pytest.raises(ValueError, match="not the reference"):
        train_reference("espcn-x4", seed=1, out_dir=WEIGHTS_DIR)
