"""VDSR's option for the lab's ablation: the same layers without the global residual."""
import torch

from srlib.models import build, count_parameters
from srlib.models.vdsr import VDSR
from srlib.profile import receptive_radius


def test_default_is_the_papers_residual_network():
    model = build("vdsr", 3, size="paper")
    assert model.global_residual
    assert count_parameters(model) == 665_921
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 20
    assert receptive_radius(model, channels=1) == 20  # (2 * 20 + 1) pixels across


def test_without_residual_the_output_is_the_layers_output():
    torch.manual_seed(0)
    plain = VDSR(3, depth=4, n_feats=8, residual=False)
    residual = VDSR(3, depth=4, n_feats=8)
    residual.load_state_dict(plain.state_dict())  # same parameters: the option adds none
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        assert torch.allclose(residual(x), x + plain(x))
    assert plain.srlib_config["residual"] is False  # recorded, so checkpoints tell the two apart
