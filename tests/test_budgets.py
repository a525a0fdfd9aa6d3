"""Every notebook that trains runs to its last cell at the gpu and paper budgets, with the full data.

Each is executed from a temporary folder as ``benchmarks/budgets.py`` does: ``SRLIB_BUDGET`` set,
every training stopped after two steps (``SRLIB_MAX_STEPS=2``), the networks, data, patch sizes and
evaluations of the budget unchanged. Its outputs are not compared with the stored ones (those are the
quick budget's). What it costs, counted as it runs, must be what the labs' budget tables show
(``srlib/budget_costs.json``), and the gpu budget must fit about ten minutes of a T4: at most fifteen.
"""
import json

import pytest
import torch
from script_loader import load_script

from srlib.budget import COSTS_FILE
from srlib.data import PatchDataset, data_root, load_set

budgets = load_script("benchmarks/budgets.py")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all((data_root() / name).is_dir() for name in ("T91", "BSD200")),
                       reason="needs T91 and BSD200 under SRLIB_DATA (the budgets' patch sizes depend on them)"),
]
STORED = json.loads(COSTS_FILE.read_text(encoding="utf-8"))
# At the paper budget these labs cost far more than a CI run of a 2-core CPU can give: one training step
# of DRN-S on 32 patches of 320 pixels is about 7 TMAC (minutes here), and DRCN (256 filters), DRRN
# (B1U25) and EDSR (32 x 256) spend 2 to 9 TMAC on every evaluation of the photographs. Their paper
# path runs where CUDA is present; their paper-size data are checked below.
HEAVY_AT_PAPER = {"drcn", "drrn", "edsr", "drn"}


@pytest.mark.parametrize("budget", ["gpu", "paper"])
@pytest.mark.parametrize("notebook", budgets.LABS, ids=budgets.lab_name)
def test_every_budget_runs_to_the_last_cell_and_costs_what_its_table_says(notebook, budget):
    if budget == "paper" and budgets.lab_name(notebook) in HEAVY_AT_PAPER and not torch.cuda.is_available():
        pytest.skip("the paper budget of this lab needs a GPU to run in minutes (see HEAVY_AT_PAPER)")
    lab = budgets.lab_name(notebook)
    row = budgets.costs(budgets.run_lab(notebook, budget), STORED["tflops"], STORED["step_ms"], lab)
    stored = STORED["labs"][lab][budget]
    assert row["trainings"] == stored["trainings"] > 0
    # Counts are exact, except those of trainings whose steps a lab decides with a clock (budgets.CLOCKED):
    # those are compared apart from the rest, and only in kind.
    assert ("clocked" in row) == ("clocked" in stored) == (lab in budgets.CLOCKED)
    for key in ("train_macs", "eval_macs", "steps"):
        clocked, stored_clocked = row.get("clocked", {}).get(key, 0), stored.get("clocked", {}).get(key, 0)
        assert row[key] - clocked == pytest.approx(stored[key] - stored_clocked, rel=0.02), \
            (key, "run `python benchmarks/budgets.py --write`")
        if key in row.get("clocked", {}):
            assert clocked > 0 and stored_clocked > 0
    if "clocked" not in row:
        assert row["t4_minutes"] == pytest.approx(stored["t4_minutes"], rel=0.02, abs=0.05)
    if budget == "gpu":
        assert row["t4_minutes"] <= 15, f"{lab}: {row['t4_minutes']} T4 minutes at gpu"


@pytest.mark.parametrize(("lab", "patch", "used"), [("edsr", 192, 192), ("drn", 384, 320)])
def test_the_paper_patches_of_edsr_and_drn_are_cut_from_the_full_data(lab, patch, used):
    """EDSR's and DRN's paper patches (192 and 384 HR pixels, cut from DIV2K in the papers) against T91 and
    BSD200: images too small are left out, and DRN's patch shrinks to the 320 pixels half of them hold."""
    images = {f"{name}/{key}": img for name in ("T91", "BSD200") for key, img in load_set(name).items()}
    with pytest.warns(UserWarning, match="are left out"):
        data = PatchDataset(images, scale=4, patch_size=patch, channels="rgb")
    x, y = data.batch(list(range(4)))
    assert data.patch_size == used and x.shape == (4, 3, used // 4, used // 4) and y.shape == (4, 3, used, used)
