"""A Recipe declares one training run; ``train`` runs it exactly as the same ``fit`` call would, and a
budget's recipe is the budget's network, steps, batch and patches."""
import json
import re
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

from srlib.budget import get_budget
from srlib.models import build, lapsrn
from srlib.recipe import Recipe, train
from srlib.train import fit

RUN = dict(progress=False)


def images(n: int = 3, size: int = 30) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"image{i}": rng.integers(0, 256, (size, size + 6, 3), dtype=np.uint8) for i in range(n)}


def small(**fields) -> Recipe:
    return Recipe("espcn", "quick", 2, steps=3, batch_size=4, patch_size=12, seed=5, **fields)


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for t in model.state_dict().values()]


def test_build_starts_from_the_seeds_weights_with_the_recipes_options():
    recipe = small(options=dict(n1=16))
    first, second = recipe.build(), recipe.build()
    assert all(torch.equal(a, b) for a, b in zip(weights(first), weights(second)))
    assert first.conv1.out_channels == 16
    other_seed = replace(recipe, seed=6).build()
    assert not all(torch.equal(a, b) for a, b in zip(weights(first), weights(other_seed)))


def test_train_is_the_fit_call_it_declares():
    recipe = small(lr=2e-3, lr_schedule="cosine", clip_grad=0.5)
    data = recipe.dataset(images())
    model, history = train(recipe, data=data, **RUN)
    by_hand = recipe.build()
    by_hand_history = fit(by_hand, data, steps=3, batch_size=4, lr=2e-3, lr_schedule="cosine", clip_grad=0.5, seed=5,
                          **RUN)
    assert history.loss == by_hand_history.loss
    assert all(torch.equal(a, b) for a, b in zip(weights(model), weights(by_hand)))


def test_the_dataset_follows_the_models_declaration():
    assert tuple(small().dataset(images())[0][0].shape) == (1, 6, 6)  # ESPCN: Y, the LR patch
    assert tuple(Recipe("vdsr", "quick", 2, steps=1, patch_size=12).dataset(images())[0][0].shape) == (1, 12, 12)
    assert tuple(Recipe("edsr", "quick", 2, steps=1, patch_size=12).dataset(images())[0][0].shape) == (3, 6, 6)


def test_a_finished_run_loads_without_cutting_its_patches(tmp_path):
    recipe, path = small(), tmp_path / "run.pt"
    model, history = train(recipe, data=recipe.dataset(images()), checkpoint=path, **RUN)

    def must_not_cut():
        raise AssertionError("a finished run needs no patches")

    again, loaded = train(recipe, data=must_not_cut, checkpoint=path, **RUN)
    assert loaded.loss == history.loss
    assert all(torch.equal(a, b) for a, b in zip(weights(model), weights(again)))
    with pytest.raises(ValueError, match="lr"):
        train(replace(recipe, lr=5e-3), data=must_not_cut, checkpoint=path, **RUN)


def test_the_record_is_json_with_functions_by_name():
    record = small(loss=partial(lapsrn.loss, penalty="l2"), options=dict(n1=16)).record()
    assert record["loss"] == "srlib.models.lapsrn.loss(penalty='l2')"
    assert record["options"] == {"n1": 16} and record["steps"] == 3
    assert "loss" not in small().record()  # the model's own
    assert json.loads(json.dumps(record))["data"] == ["T91", "BSD200"]  # written as JSON, tuples as lists


def test_a_budgets_recipe_is_its_network_steps_batch_and_patches(monkeypatch):
    monkeypatch.delenv("SRLIB_MAX_STEPS", raising=False)
    budget = get_budget("quick", quick=dict(steps=120, batch_size=8, patch_size=24, eval_every=40))
    recipe = budget.recipe("drrn", 3, seed=4, lr=2e-3)
    assert (recipe.size, recipe.steps, recipe.batch_size, recipe.patch_size) == ("quick", 120, 8, 24)
    assert (recipe.seed, recipe.lr, recipe.lr_schedule) == (4, 2e-3, None)  # a constant rate unless asked
    assert budget.recipe("drrn", 3, lr_schedule="cosine").lr_schedule == "cosine"
    assert budget.bookkeeping() == dict(eval_every=40, checkpoint_every=budget.checkpoint_every, amp=False,
                                        num_workers=0)
    assert build("drrn", 3, size="quick").srlib_config == recipe.build().srlib_config


def test_every_lab_trains_through_a_recipe():
    """No lab assembles a training run by hand: no direct fit or train_or_load call, every run a train(recipe)."""
    from pathlib import Path

    import nbformat

    labs = sorted((Path(__file__).resolve().parents[1] / "book").glob("*/lab.ipynb"))
    assert len(labs) >= 9
    for path in labs:
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert not re.search(r"\b(fit|train_or_load)\(", code), path.parent.name
        assert "fit_kwargs" not in code, path.parent.name
