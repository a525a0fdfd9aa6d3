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
        assert semi_supervised_loss(unpaired, 0.0, batch_size=2)(model, x, hr).item() == pytest.approx(
            loss(model, x, hr).item())
        torch.manual_seed(3)  # the unpaired patches come from the global generator, which fit seeds and saves
        lr, _ = unpaired.batch(torch.randint(len(unpaired), (2,)).tolist())
        torch.manual_seed(3)
        mixed = semi_supervised_loss(unpaired, 0.5, batch_size=4)(model, x, hr)
        expected = 0.5 * loss(model, x, hr) + 0.5 * 0.1 * unpaired_loss(model, lr)
    with pytest.raises(ValueError, match="expects paired batches of 8, got 2: give fit batch_size=8"):
        semi_supervised_loss(unpaired, 0.5, batch_size=16)(model, x, hr)
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-5)
    # Unpaired images give gradients to the primal network too: the closed loop trains P without HR images.
    model.zero_grad()
    semi_supervised_loss(unpaired, 1.0, batch_size=4)(model, x, hr).backward()
    assert model.head.weight.grad.abs().sum() > 0 and model.dual_models[0][0].weight.grad.abs().sum() > 0


def test_semi_supervised_training_resumes_bit_for_bit(tmp_path):
    from srlib.train import fit

    paired = PatchDataset(_images(), 4, patch_size=16, channels="rgb")
    unpaired = PatchDataset(_images(), 4, patch_size=16, channels="rgb", degradation="blur", seed=5)
    run = dict(batch_size=2, lr=1e-3, progress=False, device="cpu", checkpoint_every=1)

    def trained(steps, checkpoint=None):
        model = _model()  # a new model and a new loss closure: nothing carries over but the checkpoint
        fit(model, paired, steps=steps, loss_fn=semi_supervised_loss(unpaired, 0.5, batch_size=4),
            checkpoint=checkpoint, **run)
        return model.state_dict()

    straight = trained(6)
    trained(3, tmp_path / "run.pt")
    resumed = trained(6, tmp_path / "run.pt")
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def test_each_process_takes_its_own_part_of_the_unpaired_draw(monkeypatch):
    import srlib.models.drn as drn

    unpaired = PatchDataset(_images(), 4, patch_size=16, channels="rgb")
    asked = []
    monkeypatch.setattr(unpaired, "batch", lambda indices: asked.append(indices) or (torch.zeros(2, 3, 4, 4), None))
    monkeypatch.setattr(drn, "unpaired_loss", lambda model, lr: torch.zeros(()))
    monkeypatch.setattr(drn, "loss", lambda *args: torch.zeros(()))
    monkeypatch.setattr(drn.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(drn.dist, "get_world_size", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(drn.dist, "get_rank", lambda rank=rank: rank)
        torch.manual_seed(4)  # every process's generator is in the same state (fit seeds and restores them all)
        semi_supervised_loss(unpaired, 0.5, batch_size=4)(None, torch.zeros(2, 3, 4, 4), None)
    torch.manual_seed(4)
    assert asked[0] + asked[1] == torch.randint(len(unpaired), (4,)).tolist() and asked[0] != asked[1]
