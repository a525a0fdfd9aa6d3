"""Multi-scale training: MDSR learns x2, x3 and x4 together from batches of one random scale each."""
import pytest
import torch

from srlib.data import PatchDataset, sample_images
from srlib.models import build, spec
from srlib.train import fit


@pytest.fixture(scope="module")
def images():
    return {k: v[:96, :96] for k, v in list(sample_images("train").items())[:3]}


def test_lr_batches_share_one_scale_drawn_per_batch(images):
    data = PatchDataset(images, scales=(2, 3, 4), patch_size=24, channels="rgb")
    seen = set()
    for start in range(0, 160, 8):
        lr, hr = data.batch(list(range(start, start + 8)))
        scale = hr.shape[-1] // lr.shape[-1]
        assert hr.shape[-1] == 24 and lr.shape[-1] * scale == 24
        seen.add(scale)
    assert seen == {2, 3, 4}
    with pytest.raises(ValueError, match="divide by every scale"):
        PatchDataset(images, scales=(2, 3, 4), patch_size=20, channels="rgb")


def test_upsampled_patches_still_mix_scales_within_a_batch(images):
    data = PatchDataset(images, scales=(2, 3, 4), patch_size=24, channels="y", upsampled=True)
    net_input, hr = data.batch(list(range(32)))
    assert net_input.shape == hr.shape == (32, 1, 24, 24)


def test_mdsr_trains_every_scale_head_with_the_plain_loop(images):
    torch.manual_seed(0)
    model = build("mdsr", 2, size="quick", n_resblocks=1, n_feats=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = PatchDataset(images, scales=(2, 3, 4), patch_size=24, channels="rgb")
    fit(model, data, steps=12, batch_size=4, loss_fn=spec("mdsr").loss, progress=False, device="cpu")
    for scale in (2, 3, 4):
        moved = [k for k in before if k.startswith((f"pre_process.{scale}.", f"upsample.{scale}."))
                 and not torch.equal(before[k], model.state_dict()[k])]
        assert moved, f"the x{scale} head never trained"
    assert model.scale == 2 and model.srlib_config["scale"] == 2  # training does not move the active scale
    lr = torch.rand(1, 3, 6, 6)
    assert model(lr, scale=4).shape[-1] == 24 and model(lr).shape[-1] == 12
    with pytest.raises(ValueError, match="built for scales"):
        model(lr, scale=8)
