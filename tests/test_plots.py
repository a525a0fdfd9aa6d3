"""Tests of the book's figures: structure (panels, insets, titles), not pixels."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from srlib.data import sample_images  # noqa: E402
from srlib.history import History  # noqa: E402
from srlib.plots import _most_textured_box, compare, plot_history, show_filters  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def textured_image():
    """A smooth 60x72 image with one textured patch at rows 30-45, columns 40-55."""
    y, x = np.mgrid[0:60, 0:72] / 72.0
    img = 0.3 + 0.4 * x
    rng = np.random.default_rng(0)
    img[30:45, 40:55] += 0.3 * rng.random((15, 15))
    return np.clip(img, 0, 1)


def main_axes(fig):
    return [ax for ax in fig.axes if ax.get_title()]


def insets_of(ax):
    return list(ax.child_axes)  # inset axes are children of their panel, not of the figure


def test_compare_with_given_psnr_mixed_inputs():
    hr = textured_image()
    rgb_hr = np.stack([hr] * 3, axis=-1)
    candidates = {
        "bicubic": (np.stack([hr * 0.9] * 3, axis=-1) * 255).astype(np.uint8),  # numpy uint8 HxWx3
        "FSRCNN": torch.from_numpy(rgb_hr).permute(2, 0, 1).float()[None],       # torch (1,C,H,W)
    }
    fig = compare(rgb_hr, candidates, psnr={"bicubic": 28.123, "FSRCNN": 31.5}, box=(10, 12, 12, 12))
    assert isinstance(fig, plt.Figure)
    panels = main_axes(fig)
    assert len(panels) == len(fig.axes) == 3
    assert [len(insets_of(ax)) for ax in panels] == [1, 1, 1]  # one zoomed inset per panel
    titles = [ax.get_title() for ax in panels]
    assert titles[0].startswith("HR")
    assert "PSNR 28.12 dB" in titles[1] and "PSNR 31.50 dB" in titles[2]
    for ax in panels:
        (inset,) = insets_of(ax)
        assert inset.get_images()[0].get_array().shape[:2] == (12, 12)  # the box, magnified
        assert len(ax.patches) == 1  # the rectangle marking the box
    # every inset sits in the same place of its panel
    fig.canvas.draw()

    def relative_place(ax):
        outer, inner = ax.get_position(), insets_of(ax)[0].get_position()
        return [(inner.x0 - outer.x0) / outer.width, (inner.y0 - outer.y0) / outer.height,
                inner.width / outer.width, inner.height / outer.height]

    places = np.array([relative_place(ax) for ax in panels])
    assert np.allclose(places, places[0], atol=1e-6)


def test_compare_computes_psnr_and_finds_texture():
    pytest.importorskip("srlib.metrics")
    hr = torch.from_numpy(textured_image()).float()[None]  # grayscale torch (1,H,W)
    noisy = (hr + 0.05 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    lr = hr[:, ::2, ::2]  # the LR input is shown enlarged, without a PSNR
    fig = compare(hr, {"LR input": lr, "noisy": noisy, "exact": hr.clone()}, scale=2)
    panels = main_axes(fig)
    assert len(panels) == len(fig.axes) == 4
    assert [len(insets_of(ax)) for ax in panels] == [1, 1, 1, 1]
    assert "PSNR" not in panels[1].get_title()
    assert "PSNR" in panels[2].get_title() and "dB" in panels[2].get_title()
    assert panels[0].get_images()[0].get_cmap().name == "gray"
    # the automatic box lands on the textured patch
    rect = panels[0].patches[0]
    top, left = rect.get_y() + 0.5, rect.get_x() + 0.5
    assert 30 - rect.get_height() < top < 45 and 40 - rect.get_width() < left < 55
    assert top % 2 == 0 and left % 2 == 0  # aligned with the LR pixel grid


def test_compare_rejects_mismatched_sizes_and_boxes():
    hr = textured_image()
    with pytest.raises(ValueError, match="candidate 'bad'"):
        compare(hr, {"bad": hr[:50, :50]}, psnr=False)
    with pytest.raises(ValueError, match="does not fit"):
        compare(hr, {"same": hr}, psnr=False, box=(50, 60, 20, 20))


def test_most_textured_box_finds_the_patch():
    top, left = _most_textured_box(textured_image(), 10, 10)
    assert 28 <= top <= 37 and 38 <= left <= 47  # on the 15x15 patch at (30, 40)


def make_history(offset: float) -> History:
    steps = list(range(1, 201))
    loss = [1.0 / s + offset + 0.01 * np.sin(s) for s in steps]
    return History(steps=steps, loss=loss, lr=[1e-3] * 200,
                   val=[(s, 25 + 5 * s / 200 + offset) for s in range(50, 201, 50)])


def test_plot_history_single_and_overlaid():
    fig = plot_history(make_history(0.1))
    assert len(fig.axes) == 2
    loss_ax, psnr_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and loss_ax.get_title() == "Training loss"
    assert psnr_ax.get_title() == "Validation PSNR" and psnr_ax.get_ylabel() == "PSNR (dB)"
    assert len(loss_ax.lines) == 2 and len(psnr_ax.lines) == 1  # raw + smoothed; validation

    runs = {"Adam": make_history(0.1), "SGD": make_history(0.2).to_dict()}
    fig = plot_history(runs, smooth=10, reference={"bicubic": 24.0})
    loss_ax, psnr_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["Adam", "SGD"]
    labels = [t.get_text() for t in psnr_ax.get_legend().get_texts()]
    assert labels == ["Adam", "SGD", "bicubic (24.00 dB)"]


def test_plot_history_without_validation():
    fig = plot_history(History(steps=[1, 2, 3], loss=[1.0, 0.5, 0.25], lr=[0.1] * 3))
    assert any("no validation" in t.get_text() for t in fig.axes[1].texts)


def test_protocol_images_carry_the_tables_psnr_into_the_figure():
    """The PSNR in a comparison's title is the figure :func:`evaluate` puts in its table."""
    from srlib.evaluate import evaluate, protocol_images
    from srlib.models import build

    torch.manual_seed(0)
    model = build("espcn", 3).eval()
    img = sample_images("test")["chelsea"][:120, :150]
    table = evaluate(model, {"chelsea": img}, 3)
    shown = protocol_images(model, img, 3, label="ESPCN")
    hr = shown.pop("HR")
    fig = compare(hr, shown, scale=3, errors=True)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert f"bicubic\nPSNR {table.bicubic_psnr[0]:.2f} dB" in titles
    assert f"ESPCN\nPSNR {table.psnr[0]:.2f} dB" in titles
    assert "|ESPCN - HR|" in titles and "|bicubic - HR|" in titles
    plt.close(fig)


def test_show_filters_draws_every_filter_on_its_own_scale():
    weight = torch.randn(10, 1, 5, 5)
    fig = show_filters(weight, columns=4)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 10 and len(fig.axes) == 12  # 3 rows of 4, two left empty
    for im in images:
        low, high = im.get_clim()
        assert low == -high > -np.inf
    with pytest.raises(ValueError, match="shape"):
        show_filters(torch.randn(4, 3, 5, 5))
    plt.close(fig)
