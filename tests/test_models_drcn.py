"""DRCN's ablation options and its read-out of one recursion's prediction."""
import pytest
import torch

from srlib.models import build, count_parameters, rebuild, spec
from srlib.profile import receptive_radius


def small(**options):
    torch.manual_seed(0)
    return build("drcn", 3, size="quick", n_feats=4, recursions=3, **options).eval()


def test_defaults_are_the_papers_model():
    model = small()
    assert model.recursive_supervision and model.skip and model.ensemble_weights.numel() == 3


def test_without_recursive_supervision_one_reconstruction_and_no_ensemble():
    full, basic = small(), small(recursive_supervision=False)
    assert count_parameters(full) - count_parameters(basic) == 3  # the ensemble weights only
    x = torch.rand(2, 1, 9, 9)
    with torch.no_grad():
        predictions, final = basic.forward_all(x)
        full_predictions, _ = full.forward_all(x)
    assert len(predictions) == 1 and torch.equal(final, predictions[0])
    assert torch.allclose(final, full_predictions[-1])  # same seed, same weights: y_D of the full model
    hr = torch.rand_like(x)  # alpha has nothing to weigh: the loss is the final term alone
    assert torch.allclose(spec("drcn").loss(basic, x, hr, alpha=1.0), spec("drcn").loss(basic, x, hr, alpha=0.0))
    assert receptive_radius(basic) == 3 + 4  # one chain: 2 embedding + D recursions + 2 reconstruction layers


def test_without_skip_the_input_is_not_added():
    with_skip, without = small(), small(skip=False)
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        a, _ = with_skip.forward_all(x)
        b, _ = without.forward_all(x)
    assert all(torch.allclose(p, q + x) for p, q in zip(a, b))


def test_prediction_reads_out_one_recursion_and_restores_the_ensemble():
    model = small()
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        predictions, final = model.forward_all(x)
        for d in (1, 3):
            with model.prediction(d) as m:
                assert torch.allclose(m(x), predictions[d - 1])
        assert torch.allclose(model(x), final)
    with pytest.raises(ValueError, match="1..3"):
        with model.prediction(4):
            pass
    with pytest.raises(ValueError, match="3..3"):
        with small(recursive_supervision=False).prediction(2):
            pass


def test_options_survive_rebuild():
    model = small(recursive_supervision=False, skip=False)
    clone = rebuild("drcn", model.srlib_config)
    assert not clone.recursive_supervision and not clone.skip
