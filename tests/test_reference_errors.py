"""Reference weights and their provenance under damage and misuse, and the script that makes them:
refused in one line, never loaded under a wrong label, and no recorded figure or shipped file lost."""
import hashlib
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from script_loader import load_script
from test_cli_errors import one_error_line, photo, run, snapshot

import srlib.reference as reference
from srlib.models import build
from srlib.reference import WEIGHTS_DIR, half_precision, load_reference, reference_info

train_script = load_script("scripts/train_reference.py")


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A copy of the shipped weights folder, standing in for it: nothing shipped is touched."""
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy)
    monkeypatch.setattr(reference, "WEIGHTS_DIR", copy)
    return copy


def edit_json(path, change):
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def copy_of(name, folder):
    """``name``'s weights and provenance copied into ``folder``; the weights' path."""
    weights = folder / f"{name}.safetensors"
    shutil.copy(WEIGHTS_DIR / f"{name}.safetensors", weights)
    shutil.copy(WEIGHTS_DIR / f"{name}.json", folder / f"{name}.json")
    return weights


def resign(weights):
    """Record the weights file's sha256 in its provenance, as a writer of both files would."""
    edit_json(weights.with_suffix(".json"),
              lambda info: info.update(sha256=hashlib.sha256(weights.read_bytes()).hexdigest()))


# ---------------------------------------------------------------------------- integer buffers


def test_integer_buffers_are_stored_as_integers():
    """float16 holds integers exactly only to 2048 and turns 65520 and above into infinity."""
    model = build("drcn", 3, size="quick")
    model.supervision_step.fill_(70_001)
    stored = half_precision(model.state_dict())
    assert stored["supervision_step"].dtype == torch.int64 and int(stored["supervision_step"]) == 70_001
    assert {t.dtype for k, t in stored.items() if k != "supervision_step"} == {torch.float16}


def test_batch_norm_counters_stay_integers():
    stored = half_precision(build("drrn", 3, size="quick").state_dict())
    counters = [k for k in stored if k.endswith("num_batches_tracked")]
    assert counters and all(stored[k].dtype == torch.int64 for k in counters)


def test_a_reference_with_integer_buffers_round_trips(tmp_path):
    model = build("drcn", 3, size="quick")
    model.supervision_step.fill_(70_001)
    weights = copy_of("drcn-x3", tmp_path)
    save_file(half_precision(model.state_dict()), weights)
    edit_json(weights.with_suffix(".json"), lambda info: info.update(config=model.srlib_config))
    resign(weights)
    loaded = load_reference(weights)
    assert int(loaded.supervision_step) == 70_001 and loaded.current_alpha() == model.current_alpha()


@pytest.mark.parametrize("name,steps", [("drcn-x3", 1600), ("drcn-x4", 280)])
def test_shipped_files_with_float16_counters_still_load(name, steps):
    """The shipped files hold DRCN's step counter as an exact float16; it loads as the integer."""
    assert load_file(WEIGHTS_DIR / f"{name}.safetensors")["supervision_step"].dtype == torch.float16
    model = load_reference(name)
    assert model.supervision_step.dtype == torch.int64 and int(model.supervision_step) == steps
    for key, tensor in load_file(WEIGHTS_DIR / f"{name}.safetensors").items():  # the same values as stored
        assert torch.equal(model.state_dict()[key].float(), tensor.float()), key


def test_an_integer_buffer_stored_as_infinity_is_refused(tmp_path):
    weights = copy_of("drcn-x3", tmp_path)
    state = load_file(weights)
    state["supervision_step"] = torch.tensor(70_001.0).half()  # inf: what the old scheme made of it
    save_file(state, weights)
    resign(weights)
    with pytest.raises(ValueError, match="the integer buffer supervision_step holds \\[inf\\], not whole numbers"):
        load_reference(weights)


# ---------------------------------------------------------------------------- provenance


@pytest.mark.parametrize("key", ["sha256", "model", "config", "scale", "measured"])
def test_provenance_missing_a_key_is_one_line(tmp_path, key):
    weights = copy_of("espcn-x3", tmp_path)
    edit_json(weights.with_suffix(".json"), lambda info: info.pop(key))
    with pytest.raises(ValueError, match=f"espcn-x3.json lacks {key}: an incomplete or altered provenance file; "
                                         "restore it from the repository"):
        load_reference(weights)


def test_the_command_line_names_a_provenance_without_checksum(capsys, tmp_path):
    weights = copy_of("espcn-x3", tmp_path)
    edit_json(weights.with_suffix(".json"), lambda info: info.pop("sha256"))
    code, _, err = run(capsys, "evaluate", weights, "--no-progress")
    assert code == 1
    one_error_line(err, "espcn-x3.json lacks sha256")


@pytest.mark.parametrize("change", [
    lambda info: (info.update(scale=4), info["config"].update(scale=4)),
    lambda info: info.update(scale=4),
], ids=["both labels", "one label"])
def test_x3_weights_relabelled_x4_are_refused(weights_dir, change):
    """VDSR's weights fit every scale: only the label says x3."""
    edit_json(weights_dir / "vdsr-x3.json", change)
    with pytest.raises(ValueError, match="vdsr-x3.json gives conflicting scales .*: the file was altered"):
        load_reference("vdsr-x3")


def test_a_configuration_that_does_not_fit_the_weights_is_one_line(tmp_path):
    weights = copy_of("espcn-x3", tmp_path)
    edit_json(weights.with_suffix(".json"), lambda info: info["config"].update(n1=16))
    with pytest.raises(ValueError, match="espcn-x3.safetensors does not fit the model its espcn-x3.json describes"):
        load_reference(weights)


def test_a_folder_named_like_a_reference_does_not_hide_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "espcn-x3").mkdir()  # e.g. where a student keeps that chapter's outputs
    photo(tmp_path / "photo.png")
    code, stdout, err = run(capsys, "upscale", "espcn-x3", "photo.png", "--out-dir", "out")
    assert code == 0 and err == "" and "out/photo_x3.png" in stdout


# ---------------------------------------------------------------------------- the reference script


def test_remeasure_without_set5_keeps_the_figures(weights_dir, tmp_path, capsys):
    before = snapshot(weights_dir)
    empty_root = tmp_path / "data"
    empty_root.mkdir()
    code = train_script.main(["espcn-x3", "--remeasure", "--root", str(empty_root)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"cannot re-measure espcn-x3: Set5 not found in {empty_root}, so its recorded figures would be lost; " \
           "they are kept" in err
    assert snapshot(weights_dir) == before
    assert "Set5" in reference_info("espcn-x3")["measured"]


def test_training_over_shipped_weights_needs_overwrite(weights_dir, capsys):
    before = snapshot(weights_dir)
    code = train_script.main(["espcn-x3", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == (
        f"train_reference.py: {weights_dir / 'espcn-x3.safetensors'} exists already; give --overwrite "
        "(overwrite=True) to replace it and its provenance, or --out-dir for another folder")
    assert snapshot(weights_dir) == before


def test_training_without_its_data_is_one_line(tmp_path, capsys):
    code = train_script.main(["espcn-x3", "--root", str(tmp_path / "nothing"), "--out-dir", str(tmp_path / "out"),
                           "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("train_reference.py: ")
    assert "T91" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()



def test_an_out_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    notes = tmp_path / "weights"
    notes.write_text("my notes")
    code = train_script.main(["espcn-x3", "--out-dir", str(notes), "--overwrite", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == (f"train_reference.py: --out-dir {notes}: {notes} is a file, not a folder; "
                                         "choose another --out-dir")
    assert (tmp_path / "weights").read_text() == "my notes"


@pytest.mark.parametrize("change,phrase", [
    (lambda info: info.update(config=[1, 2]), "espcn-x3.json: config is not a mapping of the model's arguments"),
    (lambda info: info.update(model="espcnn"), "espcn-x3.json describes a model this srlib cannot build (unknown "
                                               "model 'espcnn'"),
    (lambda info: info["config"].update(width=3), "espcn-x3.json describes a model this srlib cannot build"),
], ids=["config not a mapping", "unknown model", "unknown argument"])
def test_provenance_describing_no_buildable_model_is_one_line(tmp_path, change, phrase):
    weights = copy_of("espcn-x3", tmp_path)
    edit_json(weights.with_suffix(".json"), change)
    with pytest.raises(ValueError, match=phrase.replace("(", r"\(")):
        load_reference(weights)


def test_a_weights_file_that_is_not_safetensors_is_one_line(tmp_path):
    weights = copy_of("espcn-x3", tmp_path)
    weights.write_bytes(b"")
    resign(weights)  # even with a matching checksum
    with pytest.raises(ValueError, match=r"espcn-x3.safetensors could not be read as safetensors \(.*header"):
        load_reference(weights)
