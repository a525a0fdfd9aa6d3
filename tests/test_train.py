"""Tests of the training loop, budgets and checkpoints, with a tiny model on random data."""
import os
import random
import signal
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from srlib import checkpoint
from srlib.budget import BUDGET_NAMES, Budget, budget, budget_table, get_budget
from srlib.checkpoint import load_checkpoint, save_checkpoint
from srlib.history import History
from srlib.models import build, spec
from srlib.train import fit, train_or_load


class TinyNet(nn.Module):
    """Stand-in for a registry model: has scale, srlib_name and srlib_config."""

    def __init__(self, channels: int = 4, scale: int = 2):
        super().__init__()
        self.scale = scale
        self.srlib_name = "tiny"
        self.srlib_config = {"channels": channels, "scale": scale}
        self.body = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class BlurPairs(torch.utils.data.Dataset):
    """Fixed random images; the target is a blurred copy. Random flips use all three RNGs."""

    def __init__(self, n: int = 32, size: int = 12):
        g = torch.Generator().manual_seed(123)
        self.x = torch.rand(n, 1, size, size, generator=g)
        kernel = torch.full((1, 1, 3, 3), 1 / 9)
        self.y = torch.nn.functional.conv2d(self.x, kernel, padding=1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x, y = self.x[i], self.y[i]
        if torch.rand(()) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        if np.random.rand() < 0.5:
            x, y = x.flip(-2), y.flip(-2)
        if random.random() < 0.5:
            x, y = x.transpose(-1, -2), y.transpose(-1, -2)
        return x, y


def make_model(seed: int = 0, **kwargs) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kwargs)


@torch.no_grad()
def psnr_of(model) -> float:
    data = BlurPairs(8)
    mse = torch.mean((model(data.x) - data.y) ** 2)
    return float(10 * torch.log10(1 / mse))


QUIET = dict(progress=False, batch_size=4)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


# ---------------------------------------------------------------------------- fit


def test_fit_lowers_the_loss():
    model = make_model()
    before = psnr_of(model)
    history = fit(model, BlurPairs(), steps=60, lr=3e-3, validate=psnr_of, eval_every=20, **QUIET)
    assert len(history.steps) == len(history.loss) == 60 and history.steps[-1] == 60
    assert np.mean(history.loss[-10:]) < 0.5 * np.mean(history.loss[:10])
    assert [s for s, _ in history.val] == [20, 40, 60]
    assert history.last_psnr > before + 3
    assert history.seconds > 0
    assert not model.training  # left ready for evaluation


def test_seeded_runs_are_identical():
    a, b = make_model(), make_model()
    ha = fit(a, BlurPairs(), steps=15, seed=3, **QUIET)
    hb = fit(b, BlurPairs(), steps=15, seed=3, **QUIET)
    assert ha.loss == hb.loss and same_weights(a, b)
    c = make_model()
    hc = fit(c, BlurPairs(), steps=15, seed=4, **QUIET)
    assert hc.loss != ha.loss  # another seed, another data order


def test_custom_loss_and_schedule():
    calls = []

    def l1(model, net_input, hr):
        calls.append(net_input.shape)
        return (model(net_input) - hr).abs().mean()

    history = fit(make_model(), BlurPairs(), steps=6, loss_fn=l1, lr=1e-2,
                  lr_schedule=lambda done: 0.5 ** done, **QUIET)
    assert history.lr == pytest.approx([1e-2 * 0.5 ** i for i in range(6)])
    assert len(calls) == 6  # the loss given, once per step


@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_each_budget_code_path_runs_on_cpu(name, tmp_path):
    """Shrink every budget to a few steps and run it the way its notebooks would."""
    tiny = dict(steps=4, batch_size=4, eval_every=2, checkpoint_every=2)
    b = get_budget(name, **{name: tiny})
    kwargs = b.fit_kwargs()
    if name == "gpu":  # mixed precision forced: bfloat16 autocast on the CPU, cosine, clipping
        kwargs.update(amp=True, lr_schedule="cosine", clip_grad=0.1, num_workers=2)
    if name == "paper":  # SGD with VDSR's adjustable clipping and a step schedule
        kwargs.update(optimizer="sgd", lr=0.1, clip_grad=0.01, clip_mode="adjustable",
                      lr_schedule="step", milestones=[2], gamma=0.1, num_workers=0)
    model = make_model()
    path = tmp_path / f"{name}.pt"
    history = fit(model, BlurPairs(), validate=psnr_of, checkpoint=path, device="cpu",
                  progress=False, **kwargs)
    assert history.steps == [1, 2, 3, 4] and all(np.isfinite(history.loss))
    assert [s for s, _ in history.val] == [2, 4]
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 4 and ckpt["facts"]["finished"]
    if name == "gpu":
        assert ckpt["facts"]["amp"] is True
        assert history.lr[0] == pytest.approx(1e-3) and history.lr[-1] < history.lr[0]
    if name == "paper":
        assert history.lr == pytest.approx([0.1, 0.1, 0.01, 0.01])


def test_amp_autocasts_to_bfloat16_on_cpu():
    seen = []

    def loss_fn(model, x, y):
        seen.append(model.body(x).dtype)  # the convolutions run in bfloat16
        return torch.mean((model(x).float() - y) ** 2)

    fit(make_model(), BlurPairs(), steps=2, loss_fn=loss_fn, amp=True, device="cpu", **QUIET)
    assert seen == [torch.bfloat16, torch.bfloat16]


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="milestones"):
        fit(make_model(), BlurPairs(), steps=2, lr_schedule="step", **QUIET)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        fit(make_model(), BlurPairs(n=3), steps=2, **QUIET)
    with pytest.raises(FloatingPointError, match="step 1"):
        fit(make_model(), BlurPairs(), steps=2, loss_fn=lambda m, x, y: m(x).sum() * float("nan"), **QUIET)


# ---------------------------------------------------------------------------- budgets


def test_budget_from_environment(monkeypatch):
    monkeypatch.delenv("SRLIB_BUDGET", raising=False)
    assert budget() == ("gpu" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv("SRLIB_BUDGET", "paper")
    assert budget() == "paper" and get_budget().name == "paper"
    assert get_budget().model_size == "paper"
    monkeypatch.setenv("SRLIB_BUDGET", "fast")
    with pytest.raises(ValueError, match="quick, gpu, paper"):
        get_budget()


def test_budget_overrides_and_table(monkeypatch):
    monkeypatch.setenv("SRLIB_BUDGET", "quick")
    per_budget = dict(quick=dict(steps=400), gpu=dict(steps=20_000),
                      paper=dict(steps=1_000_000, extra=dict(recursions=16)))
    b = get_budget(**per_budget)
    assert isinstance(b, Budget) and b.name == "quick" and b.steps == 400
    assert b.model_size == "quick" and b.fit_kwargs()["steps"] == 400
    assert get_budget("paper", **per_budget).extra == {"recursions": 16}
    with pytest.raises(TypeError, match="step"):
        get_budget(quick=dict(step=5))  # a typo must not pass silently
    with pytest.raises(ValueError, match="turbo"):
        get_budget(turbo=dict(steps=5))
    with pytest.raises(dataclasses_frozen_error()):
        b.steps = 3

    table = budget_table(**per_budget)
    text = repr(table)
    assert "quick (active)" in text and "20,000" in text and "1,000,000" in text
    assert "recursions" in text and "16" in text
    html = table._repr_html_()
    assert "<table>" in html and "quick (active)" in html and "20,000" in html
    assert table.rows[0] == ["setting", "quick (active)", "gpu", "paper"]


def dataclasses_frozen_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


# ---------------------------------------------------------------------------- checkpoints


def test_crash_then_resume_equals_an_uninterrupted_run(tmp_path):
    path = tmp_path / "run.pt"
    common = dict(steps=10, checkpoint_every=5, eval_every=1, **QUIET)

    def crash_at_7(model):
        if len(crash_at_7.calls) == 6:  # validation runs after every step: this is step 7
            raise RuntimeError("power cut")
        crash_at_7.calls.append(1)
        return psnr_of(model)
    crash_at_7.calls = []

    with pytest.raises(RuntimeError, match="power cut"):
        fit(make_model(), BlurPairs(), validate=crash_at_7, checkpoint=path, **common)
    assert load_checkpoint(path)["step"] == 5  # the crash lost at most one interval
    assert not os.path.exists(str(path) + ".tmp")

    resumed_model = make_model(seed=99)  # weights come from the checkpoint, not from here
    resumed = fit(resumed_model, BlurPairs(), validate=psnr_of, checkpoint=path, **common)
    straight_model = make_model()
    straight = fit(straight_model, BlurPairs(), validate=psnr_of, **common)

    assert resumed.steps == straight.steps == list(range(1, 11))
    assert resumed.loss == straight.loss
    assert resumed.val == straight.val
    assert same_weights(resumed_model, straight_model)


def test_keyboard_interrupt_saves_and_resumes_exactly(tmp_path):
    path = tmp_path / "run.pt"
    common = dict(steps=8, checkpoint_every=100, eval_every=2, **QUIET)

    def interrupt_at_4(model):
        if interrupt_at_4.step == 4:  # raised inside validation, after step 4 was taken
            raise KeyboardInterrupt
        interrupt_at_4.step += 2
        return psnr_of(model)
    interrupt_at_4.step = 2

    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), BlurPairs(), validate=interrupt_at_4, checkpoint=path, **common)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 4 and not ckpt["facts"]["finished"]

    resumed_model = make_model(seed=5)
    resumed = fit(resumed_model, BlurPairs(), validate=psnr_of, checkpoint=path, **common)
    straight_model = make_model()
    straight = fit(straight_model, BlurPairs(), validate=psnr_of, **common)
    assert resumed.loss == straight.loss
    assert resumed.val == straight.val  # the validation owed at step 4 was run on resume
    assert same_weights(resumed_model, straight_model)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_finishes_the_step_then_saves(tmp_path):
    path = tmp_path / "run.pt"
    common = dict(steps=6, checkpoint_every=100, eval_every=1, **QUIET)

    def press_ctrl_c_at_3(model):
        press_ctrl_c_at_3.step += 1
        if press_ctrl_c_at_3.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return psnr_of(model)
    press_ctrl_c_at_3.step = 0

    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), BlurPairs(), validate=press_ctrl_c_at_3, checkpoint=path, **common)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 3 and len(ckpt["history"]["val"]) == 3
    assert signal.getsignal(signal.SIGINT) is handler_before  # the usual Ctrl-C is back

    resumed_model = make_model()
    resumed = fit(resumed_model, BlurPairs(), validate=psnr_of, checkpoint=path, **common)
    straight_model = make_model()
    straight = fit(straight_model, BlurPairs(), validate=psnr_of, **common)
    assert resumed.loss == straight.loss and resumed.val == straight.val
    assert same_weights(resumed_model, straight_model)


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    path = tmp_path / "run.pt"
    model = make_model()
    fit(model, BlurPairs(), steps=3, checkpoint=path, **QUIET)
    raw = torch.load(path, weights_only=True)  # no pickled code: safe to load from anywhere
    assert raw["model_name"] == "tiny" and raw["scale"] == 2
    assert raw["model_config"] == {"channels": 4, "scale": 2}
    assert raw["step"] == 3 and raw["optimizer_state"]["state"]
    for key in ("python", "numpy", "torch"):
        assert key in raw["rng"]
    facts = raw["facts"]
    assert facts["steps"] == 3 and facts["batch_size"] == 4 and facts["device"] == "cpu"
    assert facts["torch_version"] == torch.__version__ and facts["seconds"] > 0
    assert History.from_dict(raw["history"]).steps == [1, 2, 3]

    other = make_model(seed=1)
    load_checkpoint(path, other)
    assert same_weights(model, other)


def test_checkpoint_for_another_model_is_a_clear_error(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, make_model(scale=3))
    with pytest.raises(ValueError, match="holds tiny x3, model is tiny x2"):
        load_checkpoint(path, make_model(scale=2))
    save_checkpoint(path, make_model(channels=8, scale=2))
    with pytest.raises(ValueError, match="channels=8.*channels=4"):
        fit(make_model(channels=4), BlurPairs(), steps=2, checkpoint=path, **QUIET)

    plain = nn.Conv2d(1, 1, 3)  # models outside the registry are named after their class
    save_checkpoint(path, plain)
    with pytest.raises(ValueError, match="holds Conv2d, model is tiny x2"):
        load_checkpoint(path, make_model())


def test_helpful_errors_for_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not an srlib checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_a_failed_save_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    model = make_model()
    save_checkpoint(path, model, step=1)

    def save_half_then_die(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", save_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, step=2)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == ["run.pt"]  # and no .tmp left behind


# ---------------------------------------------------------------------------- train_or_load


def test_train_or_load_skips_when_trained(tmp_path, capsys):
    path = tmp_path / "tiny.pt"
    model, history = train_or_load(make_model(), path, BlurPairs(), steps=6, **QUIET)
    assert history.steps[-1] == 6

    def must_not_build():
        raise AssertionError("data must not be built when nothing needs training")

    again, loaded = train_or_load(make_model(seed=7), path, must_not_build, steps=6, **QUIET)
    assert "skipping training" in capsys.readouterr().out
    assert loaded.loss == history.loss and same_weights(again, model)

    fewer, _ = train_or_load(make_model(seed=7), path, must_not_build, steps=4, **QUIET)
    assert same_weights(fewer, model)  # a longer run also satisfies a shorter request


def test_train_or_load_trains_when_needed(tmp_path):
    path = tmp_path / "tiny.pt"
    train_or_load(make_model(), path, BlurPairs(), steps=4, **QUIET)
    # More steps requested: the run continues from step 4 instead of starting over.
    _, history = train_or_load(make_model(), path, BlurPairs, steps=8, **QUIET)
    straight = fit(make_model(), BlurPairs(), steps=8, **QUIET)
    assert history.steps == list(range(1, 9)) and history.loss == straight.loss

    # Another model at the same path: refuse, unless told to overwrite.
    with pytest.raises(ValueError, match="holds tiny x2, model is tiny x3"):
        train_or_load(make_model(scale=3), path, BlurPairs(), steps=2, **QUIET)
    model, history = train_or_load(make_model(scale=3), path, BlurPairs(), steps=2,
                                    overwrite=True, **QUIET)
    assert history.steps == [1, 2] and load_checkpoint(path)["scale"] == 3

    # A custom training function instead of fit.
    custom_path = tmp_path / "custom.pt"

    def my_training(model):
        return History(steps=[1, 2], loss=[0.5, 0.25], lr=[0.1, 0.1])

    _, history = train_or_load(make_model(), custom_path, train=my_training)
    assert history.loss == [0.5, 0.25] and load_checkpoint(custom_path)["step"] == 2


def test_load_model_rebuilds_through_the_registry(tmp_path, monkeypatch):
    import types
    path = tmp_path / "tiny.pt"
    model = make_model(channels=6, scale=2)
    fit(model, BlurPairs(), steps=2, checkpoint=path, **QUIET)

    fake_registry = types.ModuleType("srlib.models")
    fake_registry.rebuild = lambda name, config: TinyNet(**config)
    monkeypatch.setitem(sys.modules, "srlib.models", fake_registry)
    rebuilt = checkpoint.load_model(path)
    assert isinstance(rebuilt, TinyNet) and not rebuilt.training
    assert same_weights(rebuilt, model) and rebuilt.srlib_history.steps == [1, 2]


def test_history_round_trips_through_json():
    import json
    h = History(steps=[1, 2], loss=[0.5, 0.25], lr=[1e-3, 1e-3], val=[(2, 30.5)], seconds=1.5)
    again = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again == h and again.best_psnr == 30.5


# ---------------------------------------------------------------------------- data order and batches


class PurePairs(BlurPairs):
    """Item ``i`` depends on ``i`` alone (flipped when ``i`` is odd): no generator is consumed."""

    def __getitem__(self, i):
        x, y = self.x[i % len(self.x)], self.y[i % len(self.y)]
        return (x.flip(-1), y.flip(-1)) if i % 2 else (x, y)


class PureBatches(PurePairs):
    """The same items, also cut a whole batch at a time, as PatchDataset does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def batch(self, indices):
        self.calls.append(len(indices))
        items = [self[i] for i in indices]
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def test_batch_method_is_used_and_changes_nothing(tmp_path):
    per_item, whole = make_model(), make_model()
    ha = fit(per_item, PurePairs(), steps=9, **QUIET)
    data = PureBatches()
    hb = fit(whole, data, steps=9, **QUIET)
    assert ha.loss == hb.loss and same_weights(per_item, whole)
    assert data.calls and set(data.calls) == {128}  # several batches per call, 4 patches each

    def power_cut(model):
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):  # resuming a batch-cut run is exact too
        fit(make_model(), PureBatches(), steps=9, checkpoint=tmp_path / "run.pt", checkpoint_every=4,
            validate=power_cut, eval_every=6, **QUIET)
    assert load_checkpoint(tmp_path / "run.pt")["step"] == 4
    resumed = make_model(seed=3)
    hc = fit(resumed, PureBatches(), steps=9, checkpoint=tmp_path / "run.pt", **QUIET)
    assert hc.loss == ha.loss and same_weights(resumed, per_item)


def test_shuffled_batches_jump_straight_to_any_batch():
    from itertools import islice

    from srlib.train import _shuffled_batches

    n, batch_size = 10, 3  # 3 whole batches per epoch, the 10th index left out each epoch
    stream = list(islice(_shuffled_batches(n, batch_size, seed=5, start_batch=0), 12))
    for epoch in range(4):
        indices = [i for b in stream[3 * epoch: 3 * epoch + 3] for i in b]
        assert len(set(indices)) == 9 and all(0 <= i < n for i in indices)
    assert stream[:3] != stream[3:6]  # a fresh permutation every epoch
    for start in (1, 3, 7):
        assert list(islice(_shuffled_batches(n, batch_size, seed=5, start_batch=start), 12 - start)) == stream[start:]
    assert list(islice(_shuffled_batches(n, batch_size, seed=6, start_batch=0), 3)) != stream[:3]


def test_bad_optimizer_and_clip_mode_fail_before_training():
    with pytest.raises(ValueError, match="optimizer"):
        fit(make_model(), BlurPairs(), steps=2, optimizer="adamw", **QUIET)
    with pytest.raises(ValueError, match="clip_mode"):
        fit(make_model(), BlurPairs(), steps=2, clip_grad=1.0, clip_mode="l1", **QUIET)


def test_each_name_has_one_home():
    import srlib.budget
    import srlib.checkpoint
    import srlib.device
    import srlib.train

    exported = [name for m in (srlib.budget, srlib.checkpoint, srlib.device, srlib.train) for name in m.__all__]
    assert len(exported) == len(set(exported))  # no name is exported from two modules
    for module in (srlib.budget, srlib.checkpoint, srlib.device, srlib.train):
        for name in module.__all__:
            obj = getattr(module, name)
            assert getattr(obj, "__module__", module.__name__) == module.__name__, f"{name} is defined elsewhere"


@pytest.mark.slow
def test_loop_benchmark_runs(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "loop.py"
    spec = importlib.util.spec_from_file_location("loop_benchmark", path)
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))  # no data sets there: the bundled photographs
    loop.main(["--steps", "4", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "scikit-image samples" in out and "bare loop" in out and "fit" in out and "ratio" in out


# ---------------------------------------------------------------------------- SRLIB_MAX_STEPS and the cost ledger


def test_max_steps_stops_a_run_as_an_interruption_would(tmp_path, monkeypatch, capsys):
    full = fit(make_model(), BlurPairs(), steps=8, lr_schedule="cosine", **QUIET)
    monkeypatch.setenv("SRLIB_MAX_STEPS", "3")
    capped_budget = get_budget("gpu")
    assert "SRLIB_MAX_STEPS=3: every training stops after 3 steps" in capsys.readouterr().out
    assert capped_budget.capped and not capped_budget.calibrated and "capped at 3" in capped_budget.label
    path = tmp_path / "run.pt"
    capped = fit(make_model(), BlurPairs(), steps=8, lr_schedule="cosine", validate=psnr_of, eval_every=5,
                 checkpoint=path, **QUIET)
    assert capped.steps == [1, 2, 3] and [s for s, _ in capped.val] == [3]  # validated and saved where it stopped
    assert capped.loss == full.loss[:3] and capped.lr == full.lr[:3]  # the schedule is the 8-step run's
    assert load_checkpoint(path)["step"] == 3
    _, loaded = train_or_load(make_model(seed=5), path, BlurPairs(), steps=8, lr_schedule="cosine", **QUIET)
    assert loaded.steps == [1, 2, 3]
    monkeypatch.delenv("SRLIB_MAX_STEPS")
    resumed = fit(make_model(), BlurPairs(), steps=8, lr_schedule="cosine", validate=psnr_of, eval_every=5,
                  checkpoint=path, **QUIET)
    assert resumed.loss == full.loss  # lifting the cap continues the same run
    for wrong in ("0", "two", "-1"):
        monkeypatch.setenv("SRLIB_MAX_STEPS", wrong)
        with pytest.raises(ValueError, match="is not a positive whole number of steps"):
            get_budget("quick")


def test_the_cost_ledger_counts_a_whole_budget_from_a_capped_run(tmp_path, monkeypatch):
    import json

    from srlib.evaluate import evaluate
    from srlib.models import build
    from srlib.profile import count_macs

    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("SRLIB_COST_LEDGER", str(ledger))
    monkeypatch.setenv("SRLIB_MAX_STEPS", "2")
    model = build("espcn", 2, size="quick")
    images = {"a": np.random.default_rng(0).integers(0, 256, (24, 32), dtype=np.uint8)}
    data = [(torch.rand(1, 8, 8), torch.rand(1, 16, 16))] * 8
    fit(model, data, steps=50, eval_every=20, validate=lambda m: evaluate(m, images, 2).mean_psnr, **QUIET)
    evaluate(model, images, 2)
    train, measured = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert train == dict(kind="train", model="espcn", desc=None, steps=50, step_macs=count_macs(model, (4, 1, 8, 8)),
                         validations=3, validation_macs=count_macs(model, (1, 1, 12, 16)))  # steps 20, 40, 50
    assert measured == dict(kind="evaluate", model="espcn", images=1, macs=count_macs(model, (1, 1, 12, 16)))


@pytest.mark.parametrize("steps", [-1, 2.5, "3"])
def test_a_step_count_that_is_not_a_whole_number_is_refused(steps):
    with pytest.raises(ValueError, match="steps must be a whole number of optimizer steps, 0 or more"):
        fit(make_model(), BlurPairs(), steps=steps, **QUIET)


def test_fit_trains_with_the_models_own_loss_unless_told_otherwise():
    from srlib.train import mse_loss, own_loss

    for name in ("lapsrn", "edsr", "drcn", "srcnn"):
        assert own_loss(build(name, 4 if name != "srcnn" else 3, size="quick")) is spec(name).loss
    assert own_loss(torch.nn.Conv2d(1, 1, 3)) is mse_loss  # not an srlib model: no registry entry
