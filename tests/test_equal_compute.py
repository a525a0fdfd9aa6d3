"""The stored equal-compute ranking is the one the shipped x4 references give."""
import json

import pytest
from script_loader import load_script

from srlib.reference import RECIPES, WEIGHTS_DIR


@pytest.fixture(scope="module")
def equal_compute():
    return load_script("benchmarks/equal_compute.py")


def test_every_x4_recipe_has_the_same_planned_budget_and_data_shape(equal_compute):
    x4 = {name: recipe for name, recipe in RECIPES.items() if recipe.scale == 4}
    assert len(x4) == 10 and equal_compute.x4_references() == list(x4)
    assert {(r.batch_size, r.patch_size, r.seed) for r in x4.values()} == {(16, 48, 0)}


def test_the_stored_ranking_is_recomputed_from_the_shipped_references(equal_compute):
    stored = json.loads((WEIGHTS_DIR / "equal_compute.json").read_text())
    assert stored["command"].startswith("python benchmarks/equal_compute.py report")
    assert stored["machine"]["cpu"] and stored["machine"]["torch"]
    # Runs with other seeds are not shipped (only their recorded figures are): the rest is recomputed.
    other_seeds = [row.pop("other_seeds") for row in stored["models"]]
    assert stored["models"] == equal_compute.ranking(equal_compute.x4_references())
    for row, runs in zip(stored["models"], other_seeds):
        assert all(run["seed"] != 0 and run["held_out_psnr"] > row["bicubic_held_out_psnr"] - 3 for run in runs)
    psnrs = [row[stored["ranked_by"]] for row in stored["models"]]
    assert psnrs == sorted(psnrs, reverse=True)


def test_an_unknown_name_is_refused_in_one_line(equal_compute, capsys):
    with pytest.raises(SystemExit):
        equal_compute.main(["report", "espcn-x3"])
    assert "not x4 references: espcn-x3" in capsys.readouterr().err
