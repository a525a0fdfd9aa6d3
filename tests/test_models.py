"""Tests of the model zoo: shapes, training signal, published sizes, helpers, errors."""
import json
import math

import pytest
import torch
from torch import nn

from srlib.inference import chop_forward, output_factor, self_ensemble
from srlib.models import REGISTRY, build, count_parameters, list_models, rebuild, spec
from srlib.models.common import charbonnier
from srlib.models.lapsrn import pyramid_targets
from srlib.profile import count_macs, profile, receptive_radius

NAMES = list(REGISTRY)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """The tensors here are tiny: one thread avoids thread start-up and contention costs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_input(name, scale, lr_size=8, batch=2, seed=0):
    """A random network input of the right kind: LR image, or upsampled-size image."""
    s = spec(name)
    size = lr_size if s.input == "lr" else lr_size * scale
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, s.channels, size, size, generator=generator)


def expected_output_size(name, scale, input_size):
    return input_size * scale if spec(name).input == "lr" else input_size


# --- shapes ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_every_scale_quick(name):
    torch.manual_seed(0)
    for scale in spec(name).scales:
        model = build(name, scale, size="quick").eval()
        x = make_input(name, scale, lr_size=6)
        with torch.no_grad():
            y = model(x)
        size = expected_output_size(name, scale, x.shape[-1])
        assert y.shape == (2, spec(name).channels, size, size), (name, scale)
        assert y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("name,size", [
    ("srcnn", "paper"), ("srcnn", "9-1-5"), ("fsrcnn", "paper"), ("fsrcnn", "s"),
    ("espcn", "paper"), ("vdsr", "paper"), ("drrn", "B1U9"), ("lapsrn", "paper"),
    ("edsr", "baseline"),
])
def test_forward_shape_paper_sizes_that_are_cheap(name, size):
    for scale in spec(name).scales:
        model = build(name, scale, size=size).eval()
        x = make_input(name, scale, lr_size=5, batch=1)
        with torch.no_grad():
            y = model(x)
        assert y.shape[-1] == y.shape[-2] == expected_output_size(name, scale, x.shape[-1])


def test_non_square_input_and_odd_sizes():
    for name, scale in [("fsrcnn", 2), ("lapsrn", 4), ("edsr", 3), ("drn", 4), ("espcn", 3)]:
        model = build(name, scale, size="quick").eval()
        x = torch.rand(1, spec(name).channels, 7, 5)
        with torch.no_grad():
            assert model(x).shape[-2:] == (7 * scale, 5 * scale), name


def test_multi_output_models():
    x = make_input("drcn", 2, lr_size=5)
    drcn = build("drcn", 2, size="quick")
    intermediate, final = drcn.forward_all(x)
    assert len(intermediate) == drcn.recursions
    assert all(y.shape == x.shape for y in intermediate) and final.shape == x.shape
    assert torch.allclose(final, drcn(x))

    lapsrn = build("lapsrn", 8, size="quick")
    outputs = lapsrn.forward_all(torch.rand(1, 1, 5, 5))
    assert [o.shape[-1] for o in outputs] == [10, 20, 40]

    drn = build("drn", 8, size="quick")
    outputs = drn.forward_all(torch.rand(1, 3, 4, 4))
    assert [o.shape[-1] for o in outputs] == [4, 8, 16, 32]
    duals = drn.dual(outputs)
    assert [d.shape[-1] for d in duals] == [4, 8, 16]


def test_mdsr_set_scale_switches_head_and_upsampler():
    model = build("mdsr", 2, size="quick").eval()
    x = torch.rand(1, 3, 6, 6)
    for scale in (2, 3, 4):
        model.set_scale(scale)
        assert model.scale == scale and model.srlib_config["scale"] == scale
        with torch.no_grad():
            assert model(x).shape[-1] == 6 * scale
    with pytest.raises(ValueError, match="scales"):
        model.set_scale(8)


# --- training signal --------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_a_few_adam_steps_lower_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    s = spec(name)
    # x4 exercises the multi-level losses (LapSRN, DRN); upsampled-input models run at HR
    # size, so x2 keeps them cheap.
    scale = 2 if s.input == "upsampled" else 4
    model = build(name, scale, size="quick")
    if name == "drcn":
        model.alpha = 0.5  # fix the recursive-supervision weight so the losses compare
    hr = torch.rand(4, s.channels, 8 * scale, 8 * scale, generator=torch.Generator().manual_seed(1))
    # A smooth target is learnable in a few steps: average-pool the noise.
    hr = nn.functional.avg_pool2d(hr, 5, stride=1, padding=2, count_include_pad=False)
    lr = nn.functional.avg_pool2d(hr, scale)
    net_input = lr if s.input == "lr" else nn.functional.interpolate(lr, scale_factor=scale, mode="nearest")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        before = s.loss(model, net_input, hr).item()
    for _ in range(10):  # Adam's first steps have full size whatever the loss scale; a few can overshoot
        optimizer.zero_grad()
        s.loss(model, net_input, hr).backward()
        optimizer.step()
    with torch.no_grad():
        after = s.loss(model, net_input, hr).item()
    assert math.isfinite(before) and after < before, (name, before, after)


def test_drcn_alpha_schedule_decays_and_can_be_overridden():
    model = build("drcn", 2, size="quick", alpha_decay_steps=4)
    x = make_input("drcn", 2, lr_size=4)
    assert model.current_alpha() == 1.0
    for _ in range(2):
        spec("drcn").loss(model, x, x).backward()
    assert model.current_alpha() == pytest.approx(0.5)
    with torch.no_grad():  # evaluation calls do not advance the schedule
        spec("drcn").loss(model, x, x)
    assert model.current_alpha() == pytest.approx(0.5)
    model.alpha = 0.25
    assert model.current_alpha() == 0.25
    # alpha=0: only the final ensemble is supervised; alpha=1: only the recursions.
    intermediate, final = model.forward_all(x)
    y = torch.zeros_like(x)
    # Both terms sum the squared error over each patch (the paper's ||.||^2) and average over the batch.
    per_patch = x[0].numel()
    loss_final = spec("drcn").loss(model, x, y, alpha=0.0)
    assert torch.allclose(loss_final, nn.functional.mse_loss(final, y) / 2 * per_patch)
    loss_rec = spec("drcn").loss(model, x, y, alpha=1.0)
    expected = sum(nn.functional.mse_loss(p, y) for p in intermediate) / (2 * len(intermediate)) * per_patch
    assert torch.allclose(loss_rec, expected)


@pytest.mark.parametrize("name", ["vdsr", "drrn"])
def test_caffe_losses_sum_over_each_patch(name):
    """VDSR and DRRN were trained with Caffe's Euclidean loss: 1/(2N) sum ||y - y_hat||^2, not a pixel mean."""
    torch.manual_seed(0)
    model = build(name, 2, size="quick").eval()
    x = make_input(name, 2, lr_size=6, batch=2)
    y = torch.zeros_like(x)
    expected = 0.5 * ((model(x) - y) ** 2).sum() / 2  # over all pixels, divided by the batch of 2
    assert torch.allclose(spec(name).loss(model, x, y), expected)
    # The pixel mean is smaller by half the patch area: 12x12 pixels here, 41x41 in the papers.
    mean = nn.functional.mse_loss(model(x), y)
    assert spec(name).loss(model, x, y).item() == pytest.approx(mean.item() * x[0].numel() / 2, rel=1e-5)


def test_drcn_recursion_starts_as_identity_and_keeps_the_hidden_norm():
    model = build("drcn", 3, size="quick").eval()
    hidden = model.embedding(torch.rand(1, 1, 20, 20))
    with torch.no_grad():
        after = model.recursive_relu(model.recursive_conv(hidden))
    assert torch.equal(after, hidden)
    he = build("drcn", 3, size="quick", recursive_init="he")
    assert not torch.equal(he.recursive_conv.weight, model.recursive_conv.weight)
    with pytest.raises(ValueError, match="identity"):
        build("drcn", 3, recursive_init="zeros")


# --- published parameter counts -------------------------------------------------------------

def all_parameters(model):
    return count_parameters(model)


def conv_weights_only(model):
    """Weights of convolutions, no biases or PReLU slopes (how SRCNN/FSRCNN count)."""
    kinds = (nn.Conv2d, nn.ConvTranspose2d)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, kinds))


def conv_parameters(model):
    """Convolution weights and biases, without batch-norm scale/shift (how DRRN counts)."""
    kinds = (nn.Conv2d, nn.ConvTranspose2d)
    return sum(p.numel() for m in model.modules() if isinstance(m, kinds) for p in m.parameters(recurse=False))


def drn_primal(model):
    return sum(p.numel() for p in model.primal_parameters())


# (model, size, scale, published count, how the paper counts)
PUBLISHED = [
    ("srcnn", "9-5-5", 3, 57_184, all_parameters),
    ("srcnn", "9-1-5", 3, 8_032, all_parameters),
    ("fsrcnn", "paper", 3, 12_464, conv_weights_only),
    ("fsrcnn", "s", 3, 3_937, conv_weights_only),
    ("vdsr", "paper", 3, 665_000, all_parameters),
    ("drcn", "paper", 3, 1_770_000, all_parameters),
    ("drrn", "B1U9", 3, 297_000, conv_parameters),
    ("drrn", "B1U25", 3, 297_000, conv_parameters),
    ("lapsrn", "paper", 4, 812_000, all_parameters),
    ("edsr", "paper", 2, 40_700_000, all_parameters),
    ("edsr", "paper", 3, 43_700_000, all_parameters),
    ("edsr", "paper", 4, 43_100_000, all_parameters),
    ("edsr", "baseline", 2, 1_370_000, all_parameters),
    ("edsr", "baseline", 3, 1_550_000, all_parameters),
    ("edsr", "baseline", 4, 1_520_000, all_parameters),
    ("mdsr", "paper", 2, 8_000_000, all_parameters),
    ("drn", "paper", 4, 4_800_000, drn_primal),
    ("drn", "large", 4, 9_800_000, drn_primal),
    ("drn", "paper", 8, 5_400_000, drn_primal),
    ("drn", "large", 8, 10_000_000, drn_primal),
]


@pytest.mark.parametrize("name,size,scale,published,counter", PUBLISHED,
                         ids=[f"{n}-{s}-x{k}" for n, s, k, _, _ in PUBLISHED])
def test_paper_configuration_matches_published_parameter_count(name, size, scale, published, counter):
    with torch.device("meta"):  # shapes only: building a 43M-parameter model costs nothing
        model = build(name, scale, size=size)
    assert abs(counter(model) - published) / published < 0.02, (name, size, scale, counter(model))


def test_paper_size_is_the_default_and_shared_recursions_do_not_add_parameters():
    with torch.device("meta"):
        assert count_parameters(build("drrn", 3)) == count_parameters(build("drrn", 3, size="B1U25"))
        assert conv_parameters(build("drrn", 3, size="B1U9")) == conv_parameters(build("drrn", 3, size="B1U25"))
        # only the ensemble weights (one per recursion) grow with the recursion depth
        deeper, shallower = build("drcn", 3), build("drcn", 3, recursions=4)
        assert count_parameters(deeper) - count_parameters(shallower) == 16 - 4


def test_espcn_matches_the_layers_described_in_the_paper():
    # Sec. 3.2: (f1, n1) = (5, 64), (f2, n2) = (3, 32), f3 = 3, r^2 output channels, Y input.
    for r in (2, 3, 4):
        expected = (5 * 5 * 1 * 64 + 64) + (3 * 3 * 64 * 32 + 32) + (3 * 3 * 32 * r * r + r * r)
        model = build("espcn", r)
        assert count_parameters(model) == expected
        activations = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.PReLU))]
        assert not activations  # tanh, not the ReLU variant


def test_espcn_hr_space_twin_has_the_same_layers_without_the_shuffle():
    # The comparison behind the paper's speed claim: the same network on the upsampled image.
    model, twin = build("espcn", 3), build("espcn", 3, space="hr")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    twin_convs = [m for m in twin.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.kernel_size) for c in convs] == [(c.in_channels, c.kernel_size) for c in twin_convs]
    assert [c.out_channels for c in convs] == [64, 32, 9] and [c.out_channels for c in twin_convs] == [64, 32, 1]
    assert any(isinstance(m, nn.PixelShuffle) for m in model.modules())
    assert not any(isinstance(m, nn.PixelShuffle) for m in twin.modules())
    x = torch.rand(2, 1, 15, 12)
    with torch.no_grad():
        assert twin(x).shape == x.shape  # same size in and out, like the pre-upsampling models
    assert twin.input_kind == "upsampled" and output_factor(twin) == 1 and output_factor(model) == 3
    assert "space" not in model.srlib_config  # the default build (and old checkpoints) unchanged
    clone = rebuild("espcn", json.loads(json.dumps(twin.srlib_config)))
    clone.load_state_dict(twin.state_dict())
    assert clone.space == "hr"
    with pytest.raises(ValueError, match="space"):
        build("espcn", 3, space="sr")


# --- FSRCNN transfer --------------------------------------------------------------------------

def test_fsrcnn_deconvolution_swap_keeps_other_weights_and_changes_output_size():
    model = build("fsrcnn", 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.replace_deconvolution(2)
    trainable = model.freeze_all_but_deconvolution()
    after = model.state_dict()
    for key, value in before.items():
        if not key.startswith("deconvolution."):
            assert torch.equal(after[key], value), key
    assert model.scale == 2 and model.srlib_config["scale"] == 2
    assert {id(p) for p in trainable} == {id(p) for p in model.deconvolution.parameters()}
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("deconvolution."))
    with torch.no_grad():
        assert model(torch.rand(1, 1, 7, 9)).shape == (1, 1, 14, 18)
    # the checkpoint configuration follows the swap
    clone = rebuild(model.srlib_name, model.srlib_config)
    clone.load_state_dict(model.state_dict())


# --- registry -------------------------------------------------------------------------------------

def test_rebuild_from_json_config_recreates_the_model():
    for name in NAMES:
        scale = spec(name).scales[-1]
        model = build(name, scale, size="quick").eval()
        config = json.loads(json.dumps(model.srlib_config))
        assert model.srlib_name == name and config["scale"] == scale == model.scale
        clone = rebuild(name, config).eval()
        clone.load_state_dict(model.state_dict())
        x = make_input(name, scale, lr_size=4, batch=1)
        with torch.no_grad():
            assert torch.equal(model(x), clone(x)), name


def test_overrides_and_spec_contents():
    model = build("vdsr", 2, size="quick", depth=5)
    assert model.srlib_config == {"depth": 5, "n_feats": 32, "scale": 2}
    for name in NAMES:
        s = spec(name)
        assert s.input in ("lr", "upsampled") and s.channels in (1, 3)
        assert "paper" in s.sizes and "quick" in s.sizes and callable(s.loss)
        assert s.paper and s.description and s.doc
        assert set(s.size_notes) == set(s.sizes)
    rows = list_models()
    assert [r["name"] for r in rows] == NAMES
    with pytest.raises(TypeError):
        spec("srcnn").sizes["paper"] = {}


def test_clear_errors():
    with pytest.raises(ValueError, match="srcnn"):
        build("srgan", 4)
    with pytest.raises(ValueError, match=r"\(4, 8\)"):
        build("drn", 3)
    with pytest.raises(ValueError, match=r"\(2, 4, 8\)"):
        build("lapsrn", 3)
    with pytest.raises(ValueError, match="scales"):
        build("edsr", 8)
    with pytest.raises(ValueError, match="quick"):
        build("edsr", 2, size="huge")
    with pytest.raises(ValueError, match="arguments"):
        build("edsr", 2, n_layers=3)
    y_model, rgb_model = build("fsrcnn", 2, size="quick"), build("edsr", 2, size="quick")
    with pytest.raises(ValueError, match="1-channel"):
        y_model(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="3-channel"):
        rgb_model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        rgb_model(torch.rand(3, 8, 8))


# --- inference helpers ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,scale,size", [("edsr", 2, 24), ("lapsrn", 4, 24), ("vdsr", 3, 40), ("drrn", 2, 30)])
def test_chop_forward_equals_plain_forward(name, scale, size):
    torch.manual_seed(0)
    model = build(name, scale, size="quick").eval()
    with torch.no_grad():  # move off special initial values (e.g. DRRN's zero last layer)
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x = torch.rand(1, spec(name).channels, size, size + 3)
    tile = size // 3
    assert math.ceil(receptive_radius(model)) + 1 < size  # tiles really overlap their neighbours
    with torch.no_grad():
        full = model(x)
    tiled = chop_forward(model, x, tile=tile)
    assert tiled.shape == full.shape
    assert torch.allclose(tiled, full, atol=1e-5), (tiled - full).abs().max()


def test_chop_forward_warns_for_global_attention():
    model = build("drn", 4, size="quick").eval()
    with pytest.warns(UserWarning, match="only approximate the whole image"):
        out = chop_forward(model, torch.rand(1, 3, 10, 10), tile=5)
    assert out.shape == (1, 3, 40, 40)


class NearestUpsampler(nn.Module):
    """Commutes with flips and rotations, so its self-ensemble is itself."""

    scale = 2

    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest")


class ShiftRight(nn.Module):
    """Does not commute with flips: the ensemble averages the 8 directions."""

    def forward(self, x):
        return torch.roll(x, 1, dims=-1)


def test_self_ensemble_shape_and_equivariance():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(self_ensemble(NearestUpsampler(), x), NearestUpsampler()(x))
    # Rolling one pixel in each of the 4 directions (twice each), averaged.
    expected = sum(torch.roll(x, shift, dims=dim) for shift in (1, -1) for dim in (-1, -2)) / 4
    assert torch.allclose(self_ensemble(ShiftRight(), x), expected, atol=1e-6)
    model = build("edsr", 3, size="quick").eval()
    assert self_ensemble(model, x).shape == (2, 3, 15, 21)


# --- profile -------------------------------------------------------------------------------------------

def test_macs_of_a_single_conv_and_transposed_conv_match_hand_count():
    layer = nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(layer, (1, 3, 10, 12)) == 8 * 10 * 12 * 3 * 3 * 3
    strided = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert count_macs(strided, (2, 4, 8, 8)) == 2 * 6 * 4 * 4 * (4 // 2) * 3 * 3
    deconv = nn.ConvTranspose2d(5, 1, 9, stride=3, padding=3)
    assert count_macs(deconv, (1, 5, 6, 6)) == 5 * 6 * 6 * 1 * 9 * 9


def test_macs_count_every_recursion():
    n, d, h = 8, 3, 6
    model = build("drcn", 2, size="quick", n_feats=n, recursions=d)
    pixels = h * h
    embedding = pixels * 9 * (1 * n + n * n)
    recursions = d * pixels * 9 * n * n
    reconstruction = d * pixels * 9 * (n * n + n * 1)  # the shared reconstruction runs every recursion
    assert count_macs(model, (1, 1, h, h)) == embedding + recursions + reconstruction


def test_profile_reports_params_macs_and_latency():
    model = build("espcn", 3)
    result = profile(model, (1, 1, 16, 16), repeats=2)
    assert result.params == count_parameters(model)
    assert result.macs == count_macs(model, (1, 1, 16, 16)) > 0
    assert result.output_shape == (1, 1, 48, 48)
    assert result.latency_ms is not None and result.latency_ms > 0
    assert profile(model, (1, 1, 16, 16), measure_latency=False).latency_ms is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_receptive_radius_and_chop_forward_in_other_precisions(dtype):
    """The meta-device probe runs in the model's own precision, so tiling a float64 or half model works."""
    model = build("vdsr", 3, size="quick").to(dtype).eval()
    assert receptive_radius(model) == 8  # one pixel per 3x3 layer
    x = torch.rand(1, 1, 30, 30, dtype=dtype)
    with torch.no_grad():
        assert chop_forward(model, x, tile=16, overlap=None).shape == x.shape


def test_lapsrn_levels_weigh_in_proportion_to_their_pixels():
    """As in the authors' release, each level's Charbonnier penalty is summed over its pixels (x2 : x4 = 1 : 4)."""
    torch.manual_seed(0)
    model = build("lapsrn", 4, size="quick")
    lr, hr = torch.rand(2, 1, 6, 6), torch.rand(2, 1, 24, 24)
    outputs = model.forward_all(lr)
    targets = pyramid_targets(hr, 2)
    means = [charbonnier(o, t) for o, t in zip(outputs, targets)]
    pixels = [o[0].numel() for o in outputs]
    assert pixels == [144, 576]
    expected = sum(m * n for m, n in zip(means, pixels))
    assert spec("lapsrn").loss(model, lr, hr).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="sum_per_patch"):
        charbonnier(outputs[0], targets[0], reduction="sum")
