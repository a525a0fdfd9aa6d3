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


def test_repeats_missing_from_the_folder_keep_their_stored_figures(equal_compute, tmp_path, monkeypatch):
    from dataclasses import asdict

    stored = {"models": [{"name": "srcnn-x4", "other_seeds": [{"seed": 1, "set5_psnr": 1.0}]},
                         {"name": "espcn-x4", "other_seeds": [{"seed": 1, "set5_psnr": 2.0}]}]}
    results = tmp_path / "equal_compute.json"
    results.write_text(json.dumps(stored))
    monkeypatch.setattr(equal_compute, "RESULTS", results)
    folder = tmp_path / "seed1"
    folder.mkdir()
    run = {"recipe": {**asdict(RECIPES["srcnn-x4"]), "seed": 1}, "seconds": 300, "commit": "abc",
           "measured": {"Set5": {"psnr": 29.5}, "embedded": {"psnr": 29.0}}}
    (folder / "srcnn-x4.json").write_text(json.dumps(run))
    rows = [{"name": "srcnn-x4"}, {"name": "espcn-x4"}]
    equal_compute.repeats(rows, [folder])
    assert rows[0]["other_seeds"] == [dict(seed=1, set5_psnr=29.5, held_out_psnr=29.0, seconds=300, commit="abc")]
    assert rows[1]["other_seeds"] == stored["models"][1]["other_seeds"]  # not rerun here: kept
