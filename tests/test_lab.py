"""srlib.lab: a lab's seed and threads, and its training claims against their calibration."""
import json
import re
import statistics
from pathlib import Path

import nbformat
import pytest
import torch

from srlib.budget import get_budget
from srlib.lab import CALIBRATION, Claim, Run, band, calibrated, lab_seed, start_run

ROOT = Path(__file__).resolve().parent.parent
CLAIM = re.compile(r'Claim\(\s*"([^"]+)"\s*,[^\n]*?(?:,\s*"([<>] [-\d.]+)")?\s*\),?\s*$', re.M)


def test_seed_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SRLIB_SEED", raising=False)
    assert lab_seed() == 0
    monkeypatch.setenv("SRLIB_SEED", " 7 ")
    assert lab_seed() == 7
    monkeypatch.setenv("SRLIB_SEED", "seven")
    with pytest.raises(ValueError, match="SRLIB_SEED='seven' is not a seed"):
        lab_seed()


def test_start_run_prints_seed_device_and_threads(monkeypatch, capsys):
    monkeypatch.setenv("SRLIB_SEED", "3")
    threads = torch.get_num_threads()
    try:
        run = start_run("fsrcnn", threads=1, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert capsys.readouterr().out == "seed: 3 | device: cpu | CPU threads: 1\n"
    assert run.seed == 3 and run.checkpoints == "checkpoints/seed3"
    assert start_run("fsrcnn", seed=0, device="cpu").checkpoints == "checkpoints"


def test_band_is_a_prediction_interval():
    values = [0.0, 1.0, 2.0, 3.0, 4.0]  # mean 2, sd 1.5811
    low, high = band(values, 5, None, checks=1)
    half = 4.604095 * 1.5811388 * (1 + 1 / 5) ** 0.5  # t(0.995; 4)
    assert low == pytest.approx(2 - half, abs=1e-3) and high == pytest.approx(2 + half, abs=1e-3)
    low_one, high_one = band(values, 5, "> 0", checks=1)
    assert high_one is None and low_one == pytest.approx(2 - 3.746947 * 1.5811388 * 1.2**0.5, abs=1e-3)
    assert band(values, 5, "< 9", checks=1)[0] is None
    # Sharing the 1 % among more checks widens each band.
    assert band(values, 5, None, checks=4)[0] < low
    with pytest.raises(ValueError, match="at least two calibrated seeds"):
        band([1.0, 1.1], 1, None, checks=1)


def test_check_claims_passes_inside_the_band_and_explains_a_failure(capsys):
    run = Run("fsrcnn", 0, torch.device("cpu"))
    quick = get_budget("quick")
    inside = calibrated("fsrcnn", "FSRCNN gain over bicubic (dB)").mean
    run.check_claims(quick, [Claim("FSRCNN gain over bicubic (dB)", inside, "> 0")])
    assert "asserted by the band" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"outside its band.*SRLIB_SEED=1.*fails twice"):
        run.check_claims(quick, [Claim("FSRCNN gain over bicubic (dB)", -1.0, "> 0")])
    with pytest.raises(ValueError, match="calibrated as claim '> 0'"):
        run.check_claims(quick, [Claim("FSRCNN gain over bicubic (dB)", inside, None)])
    with pytest.raises(KeyError, match="not calibrated"):
        run.check_claims(quick, [Claim("no such quantity", 0.0)])


def test_check_claims_skips_other_budgets_and_records_for_calibration(tmp_path, capsys):
    Run("fsrcnn", 0, torch.device("cpu")).check_claims(get_budget("paper"), [Claim("anything", -99.0, "> 0")])
    assert "Calibrated checks skipped" in capsys.readouterr().out
    record = tmp_path / "claims.json"
    Run("fsrcnn", 4, torch.device("cpu"), str(record)).check_claims(get_budget("quick"), [Claim("x (dB)", -99.0)],
                                                                    quoted={"y (dB)": 0.5})
    written = json.loads(record.read_text())
    assert written["seed"] == 4 and written["calibrated"] and written["claims"] == [
        dict(key="x (dB)", value=-99.0, claim=None)]
    assert written["quoted"] == [dict(key="y (dB)", value=0.5)]


def lab_claims(lab: str) -> dict:
    source = "\n".join(c.source for c in nbformat.read(ROOT / "book" / lab / "lab.ipynb", as_version=4).cells
                       if c.cell_type == "code")
    return {key: claim or None for key, claim in CLAIM.findall(source)}


CALIBRATION_DATA = json.loads(CALIBRATION.read_text())


@pytest.mark.parametrize("lab", sorted(CALIBRATION_DATA))
def test_every_claim_a_lab_checks_is_calibrated_and_nothing_else(lab):
    """The lab's Claim(...) keys and their stated claims equal the calibration's, and each stored
    band is the one srlib.lab.band computes from the stored runs."""
    stored = CALIBRATION_DATA[lab]["claims"]
    assert lab_claims(lab) == {key: entry["claim"] for key, entry in stored.items()}, (
        f"{lab}: the lab and srlib/calibration.json disagree; run python benchmarks/calibrate.py {lab}")
    for key, entry in stored.items():
        values = [r["value"] for r in entry["runs"]]
        assert entry["band"] == list(band(values, len({r["seed"] for r in entry["runs"]}), entry["claim"],
                                          len(stored))), key


def lab_quoted(lab: str) -> set[str]:
    """The keys of the quantities a lab records for its text to quote (``quoted={...}``)."""
    source = "\n".join(c.source for c in nbformat.read(ROOT / "book" / lab / "lab.ipynb", as_version=4).cells
                       if c.cell_type == "code" and "quoted=" in c.source)
    block = source[source.index("quoted=") :] if source else ""
    return set(re.findall(r'"([^"]+)":', block))


@pytest.mark.parametrize("lab", sorted(CALIBRATION_DATA))
def test_every_quantity_a_lab_quotes_is_calibrated_and_readable(lab):
    stored = CALIBRATION_DATA[lab].get("quoted", {})
    assert lab_quoted(lab) == set(stored), f"{lab}: run python benchmarks/calibrate.py {lab}"
    for key, entry in stored.items():
        values = [r["value"] for r in entry["runs"]]
        quantity = calibrated(lab, key)
        assert quantity.values == values and quantity.claim is None and quantity.band == (None, None)
        assert entry["mean"] == round(statistics.mean(values), 4)


def test_every_lab_that_checks_claims_is_calibrated():
    labs = [p.parent.name for p in sorted((ROOT / "book").glob("*/lab.ipynb")) if lab_claims(p.parent.name)]
    assert labs and set(labs) <= set(CALIBRATION_DATA)


def test_every_checking_lab_takes_its_seed_threads_and_claims_file_as_parameters():
    for path in sorted((ROOT / "book").glob("*/lab.ipynb")):
        lab = path.parent.name
        if not lab_claims(lab):
            continue
        cells = nbformat.read(path, as_version=4).cells
        parameters = [c.source for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(parameters) == 1 and all(f"{name} = None" in parameters[0]
                                            for name in ("seed", "threads", "claims_file")), lab
        assert any(f'start_run("{lab}", seed, threads, claims_file)' in c.source for c in cells), lab


@pytest.fixture
def calibrate_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("calibrate", ROOT / "benchmarks" / "calibrate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_entry_keeps_runs_and_bands(calibrate_module):
    records = [dict(seed=s, threads=t, claims=[dict(key="gain (dB)", value=0.4 + 0.01 * s + 0.001 * t, claim="> 0")])
               for s in range(4) for t in (1, 2)]
    entry = calibrate_module.lab_entry("toy", records)["claims"]["gain (dB)"]
    values = [r["value"] for r in entry["runs"]]
    assert len(entry["runs"]) == 8 and entry["claim"] == "> 0"
    assert entry["band"] == list(band(values, 4, "> 0", 1))  # 4 seeds, not 8 runs: threads are not independent
    assert "quoted" not in calibrate_module.lab_entry("toy", records)


def test_calibration_entry_keeps_the_quoted_quantities_without_bands(calibrate_module):
    records = [dict(seed=s, threads=1, claims=[dict(key="gain (dB)", value=0.4 + 0.01 * s, claim="> 0")],
                    quoted=[dict(key="other gain (dB)", value=float(s))]) for s in range(3)]
    entry = calibrate_module.lab_entry("toy", records)
    assert entry["quoted"] == {"other gain (dB)": dict(runs=[dict(seed=s, threads=1, value=float(s)) for s in range(3)],
                                                       mean=1.0, sd=1.0)}
    assert entry["claims"]["gain (dB)"]["band"] == list(band([0.4, 0.41, 0.42], 3, "> 0", 1))  # k counts claims only


@pytest.mark.slow
def test_calibration_executes_a_notebook_with_its_parameters(calibrate_module, tmp_path):
    """papermill sets seed, threads and claims_file; the notebook records its claims instead of checking them."""
    notebook = nbformat.v4.new_notebook(metadata=dict(kernelspec=dict(name="python3", language="python",
                                                                      display_name="Python 3")))
    parameters = nbformat.v4.new_code_cell("seed = None\nthreads = None\nclaims_file = None")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(
        "from srlib.budget import get_budget\nfrom srlib.lab import Claim, start_run\n"
        "run = start_run('toy', seed, threads, claims_file)\n"
        "run.check_claims(get_budget('quick'), [Claim('seed squared', run.seed ** 2)])")]
    path = tmp_path / "toy.ipynb"
    nbformat.write(notebook, path)
    record_file = tmp_path / "claims.json"
    calibrate_module.execute(path, dict(seed=3, claims_file=str(record_file)), 1)
    record = json.loads(record_file.read_text())
    assert (record["seed"], record["threads"], record["claims"][0]["value"]) == (3, 1, 9.0)
