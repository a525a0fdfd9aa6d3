"""LapSRN's loss option: the L2 penalty in place of Charbonnier, with the same sums over pixels and levels."""
import pytest
import torch

from srlib.models import build
from srlib.models.lapsrn import loss, pyramid_targets


def _batch():
    torch.manual_seed(0)
    model = build("lapsrn", 4, size="quick", depth=1, n_feats=8)
    return model, torch.rand(2, 1, 6, 6), torch.rand(2, 1, 24, 24)


def test_default_penalty_is_charbonnier():
    model, lr, hr = _batch()
    assert torch.equal(loss(model, lr, hr), loss(model, lr, hr, penalty="charbonnier"))


def test_l2_is_the_squared_error_summed_over_pixels_and_levels():
    model, lr, hr = _batch()
    with torch.no_grad():
        outputs, targets = model.forward_all(lr), pyramid_targets(hr, 2)
        expected = sum(((o - t.float()) ** 2).sum() for o, t in zip(outputs, targets)) / lr.shape[0]
        assert torch.allclose(loss(model, lr, hr, penalty="l2"), expected)
        charbonnier = sum(torch.sqrt((o - t.float()) ** 2 + 1e-6).sum() for o, t in zip(outputs, targets)) / 2
        assert torch.allclose(loss(model, lr, hr), charbonnier)


def test_unknown_penalty_is_refused():
    model, lr, hr = _batch()
    with pytest.raises(ValueError, match="penalty"):
        loss(model, lr, hr, penalty="l1")
