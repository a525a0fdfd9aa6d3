import numpy as np
import pytest
import torch
from torch import nn

from srlib.data import sample_images
from srlib.evaluate import evaluate, super_resolve, upscale_image
from srlib.imresize import imresize
from srlib.models import build


def identity_vdsr(scale):
    """VDSR with its last convolution zeroed: the global residual makes it return its input."""
    model = build("vdsr", scale, size="quick")
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return model


@pytest.fixture(scope="module")
def images():
    test = sample_images("test")
    return {name: img[:96, :120] for name, img in test.items()}


def test_bicubic_only_and_a_bicubic_equivalent_model_agree(images):
    base = evaluate(None, images, 3)
    assert base.names == list(images) and base.psnr == base.bicubic_psnr
    same = evaluate(identity_vdsr(3), images, 3, label="identity")
    assert np.allclose(same.psnr, same.bicubic_psnr, atol=1e-9)
    # The Y-channel pipeline and the RGB pipeline give nearly the same bicubic baseline.
    assert abs(same.mean_bicubic_psnr - base.mean_bicubic_psnr) < 0.1
    text = str(same)
    assert "identity PSNR" in text and text.splitlines()[-1].startswith("mean ")
    assert "<table>" in same._repr_html_()
    assert same.gain == pytest.approx(0.0, abs=1e-9)


def test_chop_and_self_ensemble_agree_with_plain_forward():
    torch.manual_seed(0)
    model = build("fsrcnn", 2, size="quick").eval()
    lr = torch.rand(1, 1, 40, 44, dtype=torch.float64)
    plain = super_resolve(model, lr, 2)
    tiled = super_resolve(model, lr, 2, chop=16)
    assert plain.shape == (1, 1, 80, 88)
    assert torch.allclose(plain, tiled, atol=1e-5)
    assert super_resolve(model, lr, 2, self_ensemble=True).shape == plain.shape


def test_upscale_image_handles_colour_with_a_y_model():
    img = sample_images("test")["chelsea"][:40, :50]
    out = upscale_image(identity_vdsr(2), img)
    assert out.shape == (80, 100, 3) and out.dtype == np.uint8
    # With an identity network the result is bicubic upscaling (through YCbCr and back).
    reference = np.clip(np.round(imresize(img.astype(np.float64), 2)), 0, 255)
    assert np.abs(out.astype(float) - reference).mean() < 1.0


def test_evaluate_bad_input(images):
    with pytest.raises(ValueError, match="non-empty dict"):
        evaluate(None, [], 2)
    with pytest.raises(ValueError, match="nn.Module"):
        evaluate("srcnn", images, 2)
    with pytest.raises(ValueError, match="input convention"):
        evaluate(nn.Conv2d(1, 1, 3, padding=1), images, 2)


def test_a_variant_is_evaluated_with_its_own_input_convention(images):
    twin = build("espcn", 2, space="hr")  # the registry entry takes LR input; this variant does not
    result = evaluate(twin, images, 2)
    assert len(result.psnr) == len(images)
    assert upscale_image(twin, images["chelsea"][:20, :24]).shape == (40, 48, 3)


def test_an_exact_reconstruction_is_inf_per_image_and_left_out_of_the_mean():
    from srlib.evaluate import EvalResult

    result = EvalResult(label="m", scale=2, names=["flat", "photo"], psnr=[float("inf"), 30.0], ssim=[1.0, 0.9],
                        bicubic_psnr=[40.0, 28.0], bicubic_ssim=[1.0, 0.8])
    assert result.psnr[0] == float("inf")
    with pytest.warns(UserWarning, match="1 of 2 images are reconstructed exactly"):
        assert result.mean_psnr == 30.0


def test_bicubic_alone_measures_a_grayscale_image_as_a_y_model_does():
    """A gray image is its own Y channel: bicubic's figure must match a Y model's bicubic column."""
    from srlib.data import sample_images
    from srlib.models import build

    gray = {"camera": sample_images("val")["camera"][:96, :96]}
    alone = evaluate(None, gray, 3)
    beside_a_model = evaluate(build("espcn", 3), gray, 3)
    assert alone.mean_psnr == pytest.approx(beside_a_model.mean_bicubic_psnr, abs=1e-9)


@pytest.mark.parametrize("name", ["vdsr", "espcn"], ids=["pre-upsampling", "LR input"])
def test_evaluate_gives_the_figures_of_the_protocol_applied_step_by_step(images, name):
    """evaluate prepares each image once and checks once; its figures are those of sr_metrics on super_resolve."""
    from srlib.data import to_tensor
    from srlib.degradations import bicubic_lr, upsample_bicubic
    from srlib.metrics import mod_crop, sr_metrics

    torch.manual_seed(0)
    model = build(name, 3, size="quick") if name == "vdsr" else build(name, 3)
    threads = torch.get_num_threads()
    result = evaluate(model, images, 3)
    assert torch.get_num_threads() == threads  # the protocol's one-thread section restores the setting
    for i, img in enumerate(images.values()):
        hr = to_tensor(mod_crop(img, 3), "y", dtype=torch.float64)
        lr = bicubic_lr(hr, 3)
        p, s = sr_metrics(super_resolve(model, lr, 3), hr, 3)
        bp, bs = sr_metrics(upsample_bicubic(lr, 3), hr, 3)
        assert (result.psnr[i], result.ssim[i]) == pytest.approx((p.item(), s.item()), abs=1e-12)
        assert (result.bicubic_psnr[i], result.bicubic_ssim[i]) == pytest.approx((bp.item(), bs.item()), abs=1e-12)


def test_evaluate_refuses_a_network_that_outputs_nan(images):
    model = identity_vdsr(2)
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.constant_(last.bias, float("nan"))
    with pytest.raises(ValueError, match="SR contains NaN"):
        evaluate(model, images, 2)


def test_an_rgb_model_measures_a_grayscale_image_as_its_own_y():
    """One bicubic figure for Y and RGB models on a gray image (the validation photograph is gray): an RGB
    model that returns its bicubic input scores exactly bicubic's PSNR, not 1.3 dB above it."""
    gray = {"camera": sample_images("val")["camera"][:96, :96]}

    class BicubicRGB(nn.Module):
        input_kind, in_channels = "upsampled", 3

        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(()))  # evaluation reads the device from the parameters

        def forward(self, x):
            return x

    rgb = evaluate(BicubicRGB(), gray, 4)
    assert rgb.bicubic_psnr == evaluate("bicubic", gray, 4).psnr
    assert rgb.psnr == pytest.approx(rgb.bicubic_psnr, abs=1e-9)
    edsr = evaluate(build("edsr", 4, size="quick"), gray, 4)  # a real RGB network: the same bicubic column
    assert edsr.bicubic_psnr == rgb.bicubic_psnr
