"""DRRN's local_residual option: the three variants differ only in the skip inside a unit."""
import pytest
import torch

from srlib.models import build, count_parameters
from srlib.models.drrn import LOCAL_RESIDUALS


def _models():
    torch.manual_seed(0)
    models = {}
    for mode in LOCAL_RESIDUALS:
        torch.manual_seed(0)
        models[mode] = build("drrn", 3, size="quick", units=2, n_feats=8, local_residual=mode).eval()
    return models


def test_default_is_the_papers_multi_path():
    assert build("drrn", 3, size="quick").blocks[0].local_residual == "multi-path"


def test_same_parameters_and_state_names():
    models = _models()
    counts = {count_parameters(m) for m in models.values()}
    names = {tuple(m.state_dict()) for m in models.values()}
    assert len(counts) == 1 and len(names) == 1


def test_skips_follow_their_formulas():
    models = _models()
    for m in models.values():  # a non-zero last layer, so the body shows in the output
        torch.nn.init.normal_(m.exit_conv.weight, std=0.1)
    x = torch.rand(1, 1, 12, 12)
    block = models["multi-path"].blocks[0]
    with torch.no_grad():
        h0 = block.entry_conv(block.entry_norm(x))
        hidden = {mode: h0 for mode in LOCAL_RESIDUALS}
        for u in range(2):
            for mode in LOCAL_RESIDUALS:
                g = block.shared_conv_b(block.norms_b[u](block.shared_conv_a(block.norms_a[u](hidden[mode]))))
                hidden[mode] = g + {"multi-path": h0, "chain": hidden[mode], "none": 0}[mode]
        for mode, model in models.items():
            model.exit_conv.load_state_dict(models["multi-path"].exit_conv.state_dict())
            expected = x + model.exit_conv(model.exit_norm(hidden[mode]))
            assert torch.allclose(model(x), expected, atol=1e-6), mode
        outputs = [models[mode](x) for mode in LOCAL_RESIDUALS]
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[0], outputs[2])


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="local_residual"):
        build("drrn", 3, size="quick", local_residual="dense")
