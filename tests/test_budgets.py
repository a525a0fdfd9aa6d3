"""Every notebook that trains runs to its last cell at the gpu and paper budgets, with the full data.

Each is executed from a temporary folder as ``benchmarks/budgets.py`` does: ``SRLIB_BUDGET`` set,
every training stopped after two steps (``SRLIB_MAX_STEPS=2``), the networks, data, patch sizes and
evaluations of the budget unchanged. Its outputs are not compared with the stored ones (those are the
quick budget's). What it costs, counted as it runs, must be what the labs' budget tables show
(``srlib/budget_costs.json``), and the gpu budget must fit about ten minutes of a T4: at most fifteen.
"""
import json

import pytest
from script_loader import load_script

from srlib.budget import COSTS_FILE
from srlib.datasets import data_root

budgets = load_script("benchmarks/budgets.py")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all((data_root() / name).is_dir() for name in ("T91", "BSD200")),
                       reason="needs T91 and BSD200 under SRLIB_DATA (the budgets' patch sizes depend on them)"),
]
STORED = json.loads(COSTS_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("budget", ["gpu", "paper"])
@pytest.mark.parametrize("notebook", budgets.LABS, ids=budgets.lab_name)
def test_every_budget_runs_to_the_last_cell_and_costs_what_its_table_says(notebook, budget):
    row = budgets.costs(budgets.run_lab(notebook, budget), STORED["tflops"], STORED["step_ms"])
    stored = STORED["labs"][budgets.lab_name(notebook)][budget]
    assert row["trainings"] == stored["trainings"] > 0
    # Counts are exact, but the FSRCNN lab gives SRCNN the steps that fit FSRCNN's time on this machine.
    for key in ("train_macs", "eval_macs", "steps", "t4_minutes"):
        assert row[key] == pytest.approx(stored[key], rel=0.25), (key, "run `python benchmarks/budgets.py --write`")
    if budget == "gpu":
        assert row["t4_minutes"] <= 15, f"{budgets.lab_name(notebook)}: {row['t4_minutes']} T4 minutes at gpu"
