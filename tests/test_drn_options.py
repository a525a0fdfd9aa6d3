"""DRN's losses for the lab: the dual weight, the closed loop on LR images alone, and the paired/unpaired mix."""
import pytest
import torch

from srlib.data import PatchDataset
from srlib.models import build
from srlib.models.drn import close_loop, loss, semi_supervised_loss, unpaired_loss


def _model():
    torch.manual_seed(0)
    return build("drn", 4, size="quick", n_blocks=1)


def _images():
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(40, 40, 3, generator=g) * 255).to(torch.uint8).numpy() for _ in range(2)]


def test_close_loop_returns_to_the_lr_size():
    model, x = _model(), torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        loop = close_loop(model, x)
        by_hand = model.dual_models[0](model.dual_models[1](model(x)))
    assert loop.shape == x.shape and torch.equal(loop, by_hand)
    assert unpaired_loss(model, x).item() == pytest.approx((loop - x).abs().mean().item(), rel=1e-5)


def test_dual_weight_zero_is_the_primal_loss_alone():
    model, x, hr = _model(), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        primal = loss(model, x, hr, dual_weight=0.0)
        full = loss(model, x, hr)
        dual_only = loss(model, x, hr, dual_weight=1.0) - primal
    assert full.item() == pytest.approx(primal.item() + 0.1 * dual_only.item(), rel=1e-4)


def test_semi_supervised_mix():
    model, x, hr = _model(), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    unpaired = PatchDataset(_images(), 4, patch_size=32, channels="rgb", degradation="blur")
    with torch.no_grad():
        assert semi_supervised_loss(unpaired, 0.0)(model, x, hr).item() == pytest.approx(loss(model, x, hr).item())
        lr, _ = unpaired.batch(torch.randint(len(unpaired), (8,), generator=torch.Generator().manual_seed(3)).tolist())
        mixed = semi_supervised_loss(unpaired, 0.5, batch_size=16, seed=3)(model, x, hr)
        expected = 0.5 * loss(model, x, hr) + 0.5 * 0.1 * unpaired_loss(model, lr)
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-5)
    # Unpaired images give gradients to the primal network too: the closed loop trains P without HR images.
    model.zero_grad()
    semi_supervised_loss(unpaired, 1.0, batch_size=4)(model, x, hr).backward()
    assert model.head.weight.grad.abs().sum() > 0 and model.dual_models[0][0].weight.grad.abs().sum() > 0
