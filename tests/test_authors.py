"""The papers' released weights: registry, converters, checksums, and the published Set5 figures.

The tests that read the authors' files need them in ``$SRLIB_DATA/authors`` (laid out as the
``file`` of each entry of srlib.authors) and are skipped without them.
"""
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from srlib import authors, convert
from srlib.authors import AUTHORS, authors_path, load_authors
from srlib.cli import main
from srlib.models import build, count_parameters, rebuild
from srlib.models.common import DIV2K_RGB_MEAN

NAMES = [
    "srcnn-x2-authors", "srcnn-x3-authors", "srcnn-x4-authors",
    "srcnn-9-1-5-x2-authors", "srcnn-9-1-5-x3-authors", "srcnn-9-1-5-x4-authors",
    "srcnn-9-1-5-imagenet-x3-authors", "srcnn-9-3-5-x3-authors",
    "fsrcnn-x2-authors", "fsrcnn-x3-authors", "fsrcnn-x4-authors",
    "fsrcnn-s-x2-authors", "fsrcnn-s-x3-authors", "fsrcnn-s-x4-authors",
    "vdsr-authors", "lapsrn-x2-authors", "lapsrn-x4-authors", "lapsrn-x8-authors",
]
DOWNLOAD_ONLY = ["edsr-baseline-x2-authors", "edsr-baseline-x3-authors", "edsr-baseline-x4-authors",
                 "edsr-x2-authors", "edsr-x3-authors", "edsr-x4-authors", "mdsr-authors",
                 "drn-s-x4-authors", "drn-l-x4-authors"]

DATA = Path(os.environ.get("SRLIB_DATA") or "data")
HAVE_FILES = all((DATA / "authors" / AUTHORS[n].file).is_file() for n in NAMES)
needs_files = pytest.mark.skipif(not HAVE_FILES, reason="the authors' files are not in $SRLIB_DATA/authors")
needs_set5 = pytest.mark.skipif(not (HAVE_FILES and (DATA / "Set5").is_dir()),
                                reason="the authors' files or Set5 are not in $SRLIB_DATA")


def test_the_registry_has_exactly_the_released_models():
    assert list(AUTHORS) == NAMES + DOWNLOAD_ONLY
    for entry in AUTHORS.values():
        assert set(entry.published) == set(entry.scales)
        assert entry.url.startswith("https://") and entry.terms and entry.source and entry.paper
        assert (entry.sha256 is not None) == (entry.name in NAMES)


def test_models_authors_lists_every_name_with_its_source_and_terms(capsys):
    assert main(["models", "--authors"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in AUTHORS)
    assert "yaBorn/Super-resolution @ 74efc03" in out and "academic use only" in out and "37.53" in out


def test_a_multi_scale_model_needs_its_scale_and_a_wrong_scale_is_named():
    with pytest.raises(ValueError, match="vdsr-authors serves x2, x3, x4: give the scale"):
        authors.build_authors("vdsr-authors")
    with pytest.raises(ValueError, match="srcnn-x3-authors is a x3 model, not x4"):
        authors.build_authors("srcnn-x3-authors", 4)
    assert authors.build_authors("vdsr-authors", 3).scale == 3


def test_the_lapsrn_paper_size_at_x8_is_the_released_network():
    # LapSRN_x8.mat: five convolutions per level, 667,123 parameters with biases.
    assert count_parameters(build("lapsrn", 8)) == 667_123


def test_fsrcnn_x3_built_one_tap_earlier_is_the_authors_output_compared_one_pixel_shifted():
    torch.manual_seed(0)
    theirs = build("fsrcnn", 3, padding_mode="replicate", deconv_offset=4)  # deconv.m's window
    ours = build("fsrcnn", 3, padding_mode="replicate", deconv_offset=3)
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        a, b = theirs(x), ours(x)
    # shave_x3 compares their pixel (y - 1, x - 1) with the ground truth's (y, x).
    assert torch.allclose(b[..., 3:-3, 3:-3], a[..., 2:-4, 2:-4], atol=1e-6)


def test_the_default_border_of_srcnn_and_fsrcnn_is_the_authors_test_code():
    assert build("srcnn", 3).patch_extraction.padding_mode == "replicate"
    # deconv.m's window (offset 4) with its one replicated LR pixel; at x3, where the authors' evaluation
    # shifts by one pixel, offset 3: torch's padding is offset + scale x 1.
    for scale, offset in ((2, 4), (3, 3), (4, 4)):
        fsrcnn = build("fsrcnn", scale)
        assert fsrcnn.feature_extraction[0].padding_mode == "replicate"
        assert fsrcnn.deconvolution.padding == (offset + scale,) * 2
        assert fsrcnn(torch.rand(1, 1, 7, 5)).shape == (1, 1, 7 * scale, 5 * scale)
        assert fsrcnn.replace_deconvolution(scale).deconvolution.padding == (offset + scale,) * 2


def test_zero_padding_changes_srcnn_only_within_its_receptive_field_of_the_border():
    torch.manual_seed(0)
    replicate, zeros = build("srcnn", 3), build("srcnn", 3, padding_mode="zeros")  # replicate: the default
    zeros.load_state_dict(replicate.state_dict())
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        a, b = replicate(x), zeros(x)
    assert torch.allclose(a[..., 8:-8, 8:-8], b[..., 8:-8, 8:-8], atol=1e-6)  # 9-5-5: 8 pixels of context
    assert not torch.allclose(a[..., :8, :], b[..., :8, :], atol=1e-3)


# --- the files ---------------------------------------------------------------------------------------
def _entries():
    return [(name, scale) for name in NAMES for scale in AUTHORS[name].scales]


@needs_files
@pytest.mark.parametrize("name", NAMES)
def test_each_released_file_converts_into_its_network(name):
    model = load_authors(name, AUTHORS[name].scales[0], progress=False)
    assert not model.training and model.srlib_authors["name"] == name
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    return tmp_path


def _copy(name: str, root: Path, as_name: str | None = None) -> Path:
    target = authors_path(as_name or name, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "authors" / AUTHORS[name].file, target)
    return target


@needs_files
def test_one_changed_byte_is_refused_by_the_checksum_in_one_line(data_root, capsys):
    path = _copy("fsrcnn-x2-authors", data_root)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the sha256 of fsrcnn-x2-authors's file"):
        load_authors("fsrcnn-x2-authors")
    assert main(["evaluate", "fsrcnn-x2-authors"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err and AUTHORS["fsrcnn-x2-authors"].url in err


@needs_files
def test_a_file_of_another_model_is_named_with_both_models(data_root, capsys):
    _copy("fsrcnn-x2-authors", data_root, as_name="srcnn-x3-authors")
    assert main(["evaluate", "srcnn-x3-authors"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds the weights of fsrcnn-x2-authors, not of srcnn-x3-authors" in err


def test_offline_without_the_file_one_line_names_the_file_its_url_and_where_to_put_it(data_root, monkeypatch, capsys):
    from srlib import datasets
    from srlib.datasets import fetch

    def offline(url, folder, fname, **kwargs):
        raise datasets.NetworkError(f"cannot reach {url}: no network")

    monkeypatch.setattr(fetch, "_retrieve", offline)
    assert main(["evaluate", "lapsrn-x4-authors"]) == 2
    err = capsys.readouterr().err
    entry = AUTHORS["lapsrn-x4-authors"]
    assert err.count("\n") == 1 and entry.file in err and entry.url in err
    assert f"cannot reach {entry.url}: no network" in err  # the stand-in's words: no real download was tried
    assert str(authors_path("lapsrn-x4-authors", data_root)) in err
    assert list(data_root.iterdir()) == []  # nothing half-written, not even an empty folder


def test_a_download_without_a_published_checksum_records_one_and_checks_it_afterwards(data_root, monkeypatch):
    from srlib.datasets import fetch

    state = build("edsr", 2, size="baseline").state_dict()
    released = {("head.0." + k[5:] if k.startswith("head.") else k): v * 255 if k.endswith(".bias") else v
                for k, v in state.items() if not k.endswith("mean.shift")}
    mean = torch.tensor(DIV2K_RGB_MEAN)
    released.update({"sub_mean.weight": torch.eye(3).view(3, 3, 1, 1), "sub_mean.bias": -255 * mean,
                     "add_mean.weight": torch.eye(3).view(3, 3, 1, 1), "add_mean.bias": 255 * mean})

    def download(url, folder, fname, **kwargs):
        torch.save(released, Path(folder) / fname)
        return Path(folder) / fname

    monkeypatch.setattr(fetch, "_retrieve", download)
    model = load_authors("edsr-baseline-x2-authors", progress=False)
    path = authors_path("edsr-baseline-x2-authors", data_root)
    record = path.with_name(path.name + ".sha256")
    assert record.read_text().split()[0] == authors._sha256(path)
    for key, value in model.state_dict().items():
        if not key.endswith("mean.shift"):
            assert torch.allclose(value, state[key], atol=1e-6), key
    torch.save({**released, "head.0.bias": released["head.0.bias"] + 1}, path)
    with pytest.raises(ValueError, match="does not match the sha256"):
        load_authors("edsr-baseline-x2-authors")


# --- EDSR, MDSR and DRN: converters checked on the released layouts at full size ----------------------
def _conv(state, key, out, inp, k, bias=True):
    state[f"{key}.weight"] = torch.randn(out, inp, k, k) * (1 / math.sqrt(inp * k * k))
    if bias:
        state[f"{key}.bias"] = torch.randn(out) * 10


def _mean_shifts(state):
    mean = torch.tensor(DIV2K_RGB_MEAN)
    for sign, name in ((-1, "sub_mean"), (1, "add_mean")):
        state[f"{name}.weight"] = torch.eye(3).view(3, 3, 1, 1)
        state[f"{name}.bias"] = sign * 255 * mean


def _upsampler(state, key, feats, scale):
    stages = [(0, 9)] if scale == 3 else [(2 * i, 4) for i in range(int(math.log2(scale)))]
    for index, factor in stages:
        _conv(state, f"{key}.{index}", factor * feats, feats, 3)


def released_edsr(n_resblocks, feats, scale):
    """EDSR-PyTorch's EDSR state dict layout: head.0, body.i.body.{0,2}, body.n, tail.0 (upsampler), tail.1."""
    state = {}
    _mean_shifts(state)
    _conv(state, "head.0", feats, 3, 3)
    for i in range(n_resblocks):
        _conv(state, f"body.{i}.body.0", feats, feats, 3)
        _conv(state, f"body.{i}.body.2", feats, feats, 3)
    _conv(state, f"body.{n_resblocks}", feats, feats, 3)
    _upsampler(state, "tail.0", feats, scale)
    _conv(state, "tail.1", 3, feats, 3)
    return state


def released_mdsr(n_resblocks=80, feats=64):
    """EDSR-PyTorch's MDSR: head.0, pre_process.{0,1,2} (two 5x5 blocks each), body, upsample.{0,1,2}, tail.0."""
    state = {}
    _mean_shifts(state)
    _conv(state, "head.0", feats, 3, 3)
    for i, scale in enumerate((2, 3, 4)):
        for j in (0, 1):
            _conv(state, f"pre_process.{i}.{j}.body.0", feats, feats, 5)
            _conv(state, f"pre_process.{i}.{j}.body.2", feats, feats, 5)
        _upsampler(state, f"upsample.{i}", feats, scale)
    for i in range(n_resblocks):
        _conv(state, f"body.{i}.body.0", feats, feats, 3)
        _conv(state, f"body.{i}.body.2", feats, feats, 3)
    _conv(state, f"body.{n_resblocks}", feats, feats, 3)
    _conv(state, "tail.0", 3, feats, 3)
    return state


def released_drn(feats, n_blocks, scale=4):
    """DRN's primal network: head, down.p.dual_module, up_blocks.i (RCABs with CALayer conv_du, upsampler,
    1x1 conv), tail.k."""
    phases = int(math.log2(scale))
    state = {}
    _mean_shifts(state)
    _conv(state, "head", feats, 3, 3)
    for p in range(phases):
        _conv(state, f"down.{p}.dual_module.0.0", feats * 2**p, feats * 2**p, 3, bias=False)
        _conv(state, f"down.{p}.dual_module.1", feats * 2 ** (p + 1), feats * 2**p, 3, bias=False)
    for i in range(phases):
        channels = feats * 2**phases if i == 0 else 2 * feats * 2 ** (phases - i)
        for b in range(n_blocks):
            _conv(state, f"up_blocks.{i}.{b}.body.0", channels, channels, 3)
            _conv(state, f"up_blocks.{i}.{b}.body.2", channels, channels, 3)
            _conv(state, f"up_blocks.{i}.{b}.body.3.conv_du.0", channels // 16, channels, 1)
            _conv(state, f"up_blocks.{i}.{b}.body.3.conv_du.2", channels, channels // 16, 1)
        _upsampler(state, f"up_blocks.{i}.{n_blocks}", channels, 2)
        _conv(state, f"up_blocks.{i}.{n_blocks + 1}", feats * 2 ** (phases - i - 1), channels, 1)
    _conv(state, "tail.0", 3, feats * 2**phases, 3)
    for k, p in enumerate(range(phases, 0, -1), start=1):
        _conv(state, f"tail.{k}", 3, feats * 2**p, 3)
    return state


def _loads_exactly(model, converted):
    own = model.state_dict()
    kept = {k for k in own if k.endswith("mean.shift") or k.startswith("dual_models.")}
    assert set(converted) == set(own) - kept
    assert all(own[k].shape == v.shape for k, v in converted.items())
    model.load_state_dict({**own, **converted})


@pytest.mark.slow
@pytest.mark.parametrize("size,scale", [("baseline", 2), ("baseline", 3), ("baseline", 4), ("paper", 2),
                                        ("paper", 3), ("paper", 4)])
def test_edsr_converter_fits_the_released_layout_at_full_size(size, scale):
    blocks, feats = (16, 64) if size == "baseline" else (32, 256)
    _loads_exactly(build("edsr", scale, size=size), convert.edsr(released_edsr(blocks, feats, scale)))


@pytest.mark.slow
def test_mdsr_and_drn_converters_fit_the_released_layouts_at_full_size():
    _loads_exactly(build("mdsr", 2, size="paper"), convert.mdsr(released_mdsr()))
    _loads_exactly(build("drn", 4, size="paper"), convert.drn(released_drn(16, 30)))
    _loads_exactly(build("drn", 4, size="large"), convert.drn(released_drn(20, 40)))


def _released_edsr_forward(state, x, n_resblocks, scale):
    """EDSR as the released layout computes it, on [0, 255] images (written from the paper's Fig. 3)."""
    def c(t, key):
        w = state[f"{key}.weight"]
        return F.conv2d(t, w, state.get(f"{key}.bias"), padding=w.shape[-1] // 2)

    x = c(x, "sub_mean")
    h = c(x, "head.0")
    r = h
    for i in range(n_resblocks):
        r = r + c(F.relu(c(r, f"body.{i}.body.0")), f"body.{i}.body.2")
    r = c(r, f"body.{n_resblocks}") + h
    stages = [0] if scale == 3 else [2 * i for i in range(int(math.log2(scale)))]
    for index in stages:
        r = F.pixel_shuffle(c(r, f"tail.0.{index}"), 3 if scale == 3 else 2)
    return c(c(r, "tail.1"), "add_mean")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_converted_to_the_unit_range_computes_the_released_network(scale):
    torch.manual_seed(scale)
    state = {k: v.double() for k, v in released_edsr(4, 16, scale).items()}
    model = build("edsr", scale, n_resblocks=4, n_feats=16, res_scale=1.0).double()
    model.load_state_dict({**model.state_dict(), **{k: v.double() for k, v in convert.edsr(state).items()}})
    x = torch.rand(1, 3, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(x), _released_edsr_forward(state, 255 * x, 4, scale) / 255, atol=1e-5)


def test_drn_channel_attention_keeps_its_output_when_the_range_changes():
    torch.manual_seed(0)
    state = {k: v.double() for k, v in released_drn(4, 1).items()}
    converted = convert.drn(state)
    w1, b1 = state["up_blocks.0.0.body.3.conv_du.0.weight"], state["up_blocks.0.0.body.3.conv_du.0.bias"]
    w2, b2 = state["up_blocks.0.0.body.3.conv_du.2.weight"], state["up_blocks.0.0.body.3.conv_du.2.bias"]
    pooled = torch.rand(1, w1.shape[1], 1, 1, dtype=torch.float64) * 255

    def attention(t, a, b, c, d):
        return torch.sigmoid(F.conv2d(F.relu(F.conv2d(t, a, b)), c, d))

    key = "up.0.0.body.3.weights."
    ours = attention(pooled / 255, converted[key + "0.weight"].double(), converted[key + "0.bias"].double(),
                     converted[key + "2.weight"].double(), converted[key + "2.bias"].double())
    assert torch.allclose(ours, attention(pooled, w1, b1, w2, b2))


# --- the published figures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def set5():
    from srlib.data import load_set

    return load_set("Set5", DATA)


@needs_set5
@pytest.mark.slow
@pytest.mark.parametrize("name,scale", _entries())
def test_set5_reproduces_the_published_figure(name, scale, set5):
    from srlib.protocols import evaluate_protocol

    entry = AUTHORS[name]
    recorded = json.loads(authors.MEASURED.read_text())["models"][name][str(scale)]
    model = load_authors(name, scale, progress=False)
    own = evaluate_protocol(model, set5, scale, entry.protocol).mean_psnr
    book = evaluate_protocol(model, set5, scale, "book").mean_psnr
    assert abs(own - entry.published[scale]) <= 0.03, (own, entry.published[scale])
    assert abs(book - entry.published[scale]) <= 0.15, (book, entry.published[scale])
    # The figures the book prints are the ones measured here.
    assert abs(own - recorded["set5"][entry.protocol]) < 0.01 and abs(book - recorded["set5"]["book"]) < 0.01
    if entry.model in ("srcnn", "fsrcnn"):  # the border lesson: the same weights with zero padding
        twin = rebuild(model.srlib_name, {**model.srlib_config, "padding_mode": "zeros"})
        twin.load_state_dict(model.state_dict())
        zeros = evaluate_protocol(twin.eval(), set5, scale, "book").mean_psnr
        assert abs(zeros - recorded["set5_book_zero_padding"]) < 0.01 and zeros < book


@needs_files
def test_the_labs_loader_and_the_command_line_take_the_names(capsys, tmp_path):
    from srlib.reference import load_reference

    assert load_reference("vdsr-authors", scale=4).scale == 4
    assert main(["upscale", "fsrcnn-s-x2-authors", str(tmp_path / "missing.png")]) == 2
    assert "no image file" in capsys.readouterr().err
    from PIL import Image

    Image.new("RGB", (20, 16)).save(tmp_path / "tiny.png")
    assert main(["upscale", "vdsr-authors", "--scale", "2", str(tmp_path / "tiny.png"),
                 "--out-dir", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "tiny_x2.png").size == (40, 32)


@needs_set5
@pytest.mark.slow
@pytest.mark.parametrize("name,scale", [("srcnn-x3-authors", 3), ("fsrcnn-x4-authors", 4), ("lapsrn-x4-authors", 4)])
def test_every_recorded_column_is_measured_again(name, scale, set5):
    """All the protocols and the photographs, for one network of each family (the Set5 test above covers
    every network under its own protocol, the book's and zero padding)."""
    from script_loader import load_script

    from srlib.data import sample_images

    recorded = json.loads(authors.MEASURED.read_text())["models"][name][str(scale)]
    measured = load_script("benchmarks/authors.py").measure(name, scale, set5, sample_images("test"))
    flat = lambda f: {**{k: v for k, v in f.items() if isinstance(v, float)}, **f["set5"]}  # noqa: E731
    assert flat(measured).keys() == flat(recorded).keys()
    assert all(abs(flat(measured)[k] - flat(recorded)[k]) < 0.01 for k in flat(recorded)), (measured, recorded)
