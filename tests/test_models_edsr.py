"""EDSR's batch_norm option: SRResNet's blocks for the lab's ablation; the default is unchanged."""
import re
from pathlib import Path

import pytest
import torch

from srlib.models import build, count_parameters, rebuild
from srlib.models.common import ResBlock


def test_resblock_default_has_no_batch_norm_and_keeps_layer_names():
    block = ResBlock(8)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in block.modules())
    assert set(block.state_dict()) == {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"}


def test_resblock_batch_norm_after_each_conv():
    block = ResBlock(8, batch_norm=True)
    kinds = [type(m).__name__ for m in block.body]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    x = torch.randn(2, 8, 6, 6)
    assert block(x).shape == x.shape


def test_edsr_batch_norm_option():
    plain = build("edsr", 4, size="quick")
    normed = build("edsr", 4, size="quick", batch_norm=True)
    n_blocks, n_feats = 4, 32
    assert count_parameters(normed) - count_parameters(plain) == n_blocks * 2 * 2 * n_feats
    assert rebuild(normed.srlib_name, normed.srlib_config).state_dict().keys() == normed.state_dict().keys()
    x = torch.rand(2, 3, 8, 8)
    assert normed(x).shape == plain(x).shape == (2, 3, 32, 32)


@pytest.mark.slow
def test_the_self_ensemble_figure_the_lab_quotes_for_set5_is_measured_again():
    """The EDSR lab records the x8 self-ensemble of the reference model on Set5 (a minute of CPU); measure it."""
    from srlib.data import data_root, load_set
    from srlib.evaluate import evaluate
    from srlib.reference import load_reference

    if not (data_root() / "Set5").is_dir():
        pytest.skip("Set5 is not in the data root")
    lab = Path(__file__).resolve().parents[1] / "book" / "edsr" / "lab.ipynb"
    recorded = float(re.search(r"SET5_ENSEMBLE = ([0-9.]+)", lab.read_text()).group(1))
    measured = evaluate(load_reference("edsr-x4"), load_set("Set5"), 4, self_ensemble=True).mean_psnr
    assert measured == pytest.approx(recorded, abs=1e-4)
