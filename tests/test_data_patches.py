"""PatchDataset's batched path: whole batches cut at once, each patch a pure function of (seed, index)."""
import numpy as np
import pytest
import torch

from srlib.data import PatchDataset, _dihedral_view, _uniform, dihedral


def images(n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(60, 90), (72, 48), (96, 96)][:n]
    return {f"im{i}": rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for i, (h, w) in enumerate(sizes)}


@pytest.mark.parametrize("kwargs", [dict(scale=3, patch_size=24), dict(scale=2, patch_size=20, upsampled=True),
                                    dict(scales=(2, 3, 4), patch_size=25, upsampled=True),
                                    dict(scale=4, patch_size=32, augment=False, channels="rgb")])
def test_a_batch_is_its_patches_stacked(kwargs):
    ds = PatchDataset(images(), **kwargs)
    indices = [7, 0, 123456, 7, 999_999]
    x, y = ds.batch(indices)
    assert x.dtype == y.dtype == torch.float32 and x.is_contiguous() and y.is_contiguous()
    assert len(x) == len(y) == len(indices)
    for j, i in enumerate(indices):
        xi, yi = ds[i]
        assert torch.equal(x[j], xi) and torch.equal(y[j], yi)  # wherever it sits in a batch
    assert torch.equal(x[0], x[3])
    items = ds.__getitems__(indices)  # what a DataLoader calls
    assert all(torch.equal(a, x[j]) and torch.equal(b, y[j]) for j, (a, b) in enumerate(items))


def test_patches_depend_on_the_seed():
    a, b = PatchDataset(images(), 2, 16, seed=0), PatchDataset(images(), 2, 16, seed=1)
    assert not torch.equal(a.batch(range(8))[1], b.batch(range(8))[1])
    assert torch.equal(a.batch(range(8))[1], PatchDataset(images(), 2, 16, seed=0).batch(range(8))[1])


def test_draws_cover_images_positions_symmetries_and_scales():
    u = _uniform(3, list(range(20_000)), 5)
    assert u.shape == (20_000, 5) and u.min() >= 0 and u.max() < 1
    assert np.allclose(u.mean(axis=0), 0.5, atol=0.01) and abs(np.corrcoef(u.T)[0, 1]) < 0.03

    # Image i is chosen in proportion to its area; a patch can start anywhere it fits.
    small, big = np.zeros((40, 40), np.uint8), np.zeros((80, 80), np.uint8)
    ds = PatchDataset({"small": small, "big": big}, scale=2, patch_size=20)
    u = _uniform(ds.seed, list(range(8000)), 5)
    chosen = np.searchsorted(ds._cdf, u[:, 1], side="right")
    assert abs(np.mean(chosen == 0) - 0.2) < 0.02  # areas 1600 : 6400
    top = (u[:, 2] * (ds._input_sizes[0, chosen, 0] - 10 + 1)).astype(int)
    assert top[chosen == 1].min() == 0 and top[chosen == 1].max() == 40 - 10

    # All eight symmetries, and every scale of a multi-scale set, come up.
    ramp = np.add.outer(np.arange(48), 2 * np.arange(48)).astype(np.uint8)
    ds = PatchDataset([ramp], scales=(2, 3, 4), patch_size=48, upsampled=True, channels="y")
    y = ds.batch(range(400))[1][:, 0]
    corners = {tuple(round(float(v) * 255) for v in (p[0, 0], p[0, -1], p[-1, 0])) for p in y}
    assert len(corners) == 8
    x = ds.batch(range(400))[0][:, 0]
    assert len({round(float((x[j] - y[j]).abs().mean()), 5) for j in range(400)}) == 3  # x2, x3, x4 blur


@pytest.mark.parametrize("k", range(8))
def test_view_symmetries_match_the_tensor_ones(k):
    t = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    assert torch.equal(torch.from_numpy(_dihedral_view(t.numpy(), k).copy()), dihedral(t, k))


def test_the_eight_symmetries_are_distinct_and_each_is_undone_by_its_inverse():
    t = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    images = [dihedral(t, k) for k in range(8)]
    assert len({tuple(x.flatten().tolist()) + tuple(x.shape) for x in images}) == 8
    assert all(torch.equal(dihedral(x, k, inverse=True), t) for k, x in enumerate(images))
