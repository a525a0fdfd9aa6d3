"""The papers' own models: weights the authors released, loaded into srlib's networks by name.

Four papers released their trained networks as small MATLAB files (SRCNN, FSRCNN, VDSR through
a conversion of its official test code, LapSRN); EDSR, MDSR and DRN publish PyTorch files next
to their code. Each has a name here (``srcnn-x3-authors``, ``vdsr-authors``...) that works
wherever srlib takes a model::

    model = load_authors("fsrcnn-x3-authors")          # srlib's FSRCNN holding the authors' weights
    python -m srlib evaluate lapsrn-x4-authors --sets Set5 --protocol authors
    python -m srlib upscale vdsr-authors --scale 3 photo.png
    python -m srlib models --authors                   # the list below, with sources and terms

The files are not part of srlib: their terms are academic use only, or not stated (see each
entry's ``terms``). A file is looked for in ``$SRLIB_DATA/authors/`` (the layout of
:attr:`AuthorsModel.file`) and otherwise downloaded once, with the data sets' downloader, from
the repository and commit it was published in (or the URL the authors' code names), and checked
against its sha256. For EDSR, MDSR and DRN the sha256 is not published: it is recorded beside
the file (``<file>.sha256``) the first time a download works, and checked from then on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import torch

from .table import table

__all__ = ["AuthorsModel", "AUTHORS", "is_authors", "authors_model", "authors_names", "authors_path", "available",
           "how_to_get", "figures_table", "build_authors", "fetch",
           "load_authors", "list_authors", "recorded_figures", "MEASURED"]

MEASURED = Path(__file__).parent / "weights" / "authors_measured.json"  # figures measured with these files
MAX_DOWNLOAD_BYTES = 400 << 20  # the largest, EDSR x4, is about 170 MB

_SRCNN_TERMS = "academic use only (the readme of the authors' test package)"
_LAPSRN_TERMS = "no licence stated (phoenix104104/LapSRN has no licence file): all rights reserved"
_VDSR_TERMS = ("converted from the authors' official test code by huangzehao/caffe-vdsr (MIT); "
               "the model's own terms are not stated")
_EDSR_TERMS = "code MIT (sanghyun-son/EDSR-PyTorch); the weights' terms are not stated"
_DRN_TERMS = "code MIT (guoyongcs/DRN); the weights' terms are not stated"


@dataclass(frozen=True)
class AuthorsModel:
    """One released network: where its file comes from, how srlib builds and fills it, what it scored."""

    name: str
    paper: str  # short citation
    network: str  # which of the paper's networks
    model: str  # srlib model name
    build: Mapping[str, Any]  # srlib.models.build keyword arguments besides the scale
    scales: tuple[int, ...]
    published: Mapping[int, float | None]  # Set5 PSNR (dB) the paper reports, per scale
    file: str  # path under $SRLIB_DATA/authors/
    url: str
    source: str  # repository @ commit: path, or the code that names the URL
    terms: str
    converter: str  # function of srlib.convert
    protocol: str  # the paper's own evaluation (srlib.protocols.PROTOCOLS)
    sha256: str | None = None  # None: not published, recorded beside the file on first download
    size: int | None = None  # bytes
    build_at: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # per-scale additions to build

    def check_scale(self, scale: int | None) -> int:
        if scale is None:
            if len(self.scales) > 1:
                raise ValueError(f"{self.name} serves x{', x'.join(map(str, self.scales))}: give the scale "
                                 f"(--scale on the command line)")
            return self.scales[0]
        if int(scale) not in self.scales:
            raise ValueError(f"{self.name} is a x{', x'.join(map(str, self.scales))} model, not x{scale}")
        return int(scale)


def _raw(repository: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repository}/{commit}/{quote(path)}"


_YABORN = ("yaBorn/Super-resolution", "74efc0394f0a07b615d6a25be412cf4ffc72169a")
_LAPSRN = ("phoenix104104/LapSRN", "95154bba82a3aab9bdaec8e0eedd4187babc5ed2")
_VDSR = ("huangzehao/caffe-vdsr", "5a839232d179c10736ed94e7142068b168b61cf6")


def _github(repo_commit: tuple[str, str], path: str) -> dict:
    repository, commit = repo_commit
    return dict(url=_raw(repository, commit, path), source=f"{repository} @ {commit[:7]}: {path}")


_SRCNN_FOLDERS = {"9-5-5_ImageNet": "9-5-5(ImageNet)", "9-1-5_91images": "9-1-5(91 images)",
                  "9-1-5_ImageNet": "9-1-5(ImageNet)", "9-3-5_ImageNet": "9-3-5(ImageNet)"}  # ours: theirs


def _srcnn(name, network, size_or_variant, scale, published, folder, sha256, size, paper):
    build = {"variant": size_or_variant} if size_or_variant == "9-3-5" else {"size": size_or_variant}
    build["padding_mode"] = "replicate"  # the authors' test code filters with imfilter(..., 'replicate')
    return AuthorsModel(
        name=name, paper=paper, network=network, model="srcnn", build=build, scales=(scale,),
        published={scale: published}, file=f"SRCNN/{folder}/x{scale}.mat",
        **_github(_YABORN, f"Algorithm/SRCNN/model/{_SRCNN_FOLDERS[folder]}/x{scale}.mat"),
        terms=_SRCNN_TERMS, converter="srcnn", protocol="matlab", sha256=sha256, size=size)


def _fsrcnn(name, network, size, scale, published, folder, sha256, nbytes):
    return AuthorsModel(
        name=name, paper="Dong et al., ECCV 2016", network=network, model="fsrcnn",
        build={"size": size, "padding_mode": "replicate", "deconv_offset": 4},  # deconv.m's geometry
        # The authors' x3 evaluation compares their output one pixel up and left of the ground truth
        # (shave_x3 in demo_FSRCNN.m); building it with the window one tap earlier is that comparison.
        build_at={3: {"deconv_offset": 3}}, scales=(scale,), published={scale: published},
        file=f"FSRCNN/{folder}/x{scale}.mat",
        **_github(_YABORN, f"Algorithm/FSRCNN/FSRCNN_test/model/{folder}/x{scale}.mat"),
        terms=_SRCNN_TERMS, converter="fsrcnn", protocol="matlab", sha256=sha256, size=nbytes)


_TPAMI = "Dong et al., TPAMI 2016"
_ECCV14 = "Dong et al., ECCV 2014"
_EDSR_CODE = "sanghyun-son/EDSR-PyTorch src/model/{}.py names the URL"
_EDSR_SERVER = "https://cv.snu.ac.kr/research/EDSR/models/"
_DRN_RELEASE = "https://github.com/guoyongcs/DRN/releases/download/v0.1/"

_ENTRIES = [
    _srcnn("srcnn-x2-authors", "9-5-5, ImageNet", "9-5-5", 2, 36.66, "9-5-5_ImageNet",
           "dc06d52ab0ecfb75a4222a33c06c2c23287cf67abbd75b869a178f6305f8cdc1", 268933, _TPAMI),
    _srcnn("srcnn-x3-authors", "9-5-5, ImageNet", "9-5-5", 3, 32.75, "9-5-5_ImageNet",
           "fa2ee366d328b942b971c80c24f48dc2b015d5ed4b5790070f720ccfb6ab1578", 267591, _TPAMI),
    _srcnn("srcnn-x4-authors", "9-5-5, ImageNet", "9-5-5", 4, 30.49, "9-5-5_ImageNet",
           "3f94150d24e5b60dab2b74f4eaf358aefdc72cbe724d86990435bf877ed452ed", 269001, _TPAMI),
    _srcnn("srcnn-9-1-5-x2-authors", "9-1-5, 91 images", "9-1-5", 2, 36.34, "9-1-5_91images",
           "51b748297e8669832a4ad27cc4b7eebc6d65d37a77bcb19bef23c1b5f972ea12", 38625, _ECCV14),
    _srcnn("srcnn-9-1-5-x3-authors", "9-1-5, 91 images", "9-1-5", 3, 32.39, "9-1-5_91images",
           "ef05325a96221ab9399db844bc833f687796a1078bfa6aacc6930bde60ca5b10", 38483, _ECCV14),
    _srcnn("srcnn-9-1-5-x4-authors", "9-1-5, 91 images", "9-1-5", 4, 30.09, "9-1-5_91images",
           "717c2c6f5196a95959f98953f84a359e56fc415eba190b5db016b25896e74862", 38489, _ECCV14),
    _srcnn("srcnn-9-1-5-imagenet-x3-authors", "9-1-5, ImageNet", "9-1-5", 3, 32.52, "9-1-5_ImageNet",
           "63906335110253189230f1190a577b431aaab6c3b677c97f2720da4eab7e6efe", 38350, _TPAMI),
    _srcnn("srcnn-9-3-5-x3-authors", "9-3-5, ImageNet", "9-3-5", 3, 32.66, "9-3-5_ImageNet",
           "d798df50cf1e1b265ae63204da726fd6bf8b0e42c6dd2f18d5fe618576eec553", 115087, _TPAMI),
    _fsrcnn("fsrcnn-x2-authors", "FSRCNN(56, 12, 4), 91 + General-100", "paper", 2, 37.00, "FSRCNN",
            "1d00d037c4eae56d898e1a1e62b736eb11bb2ec112b2fd29d7ead0bff5e4e8b5", 59462),
    _fsrcnn("fsrcnn-x3-authors", "FSRCNN(56, 12, 4), 91 + General-100", "paper", 3, 33.16, "FSRCNN",
            "9cbd62ce9cb8d0236d21c7b1311b1ee7f53ff227fd4a5ea62ddaf347870a80a0", 59400),
    _fsrcnn("fsrcnn-x4-authors", "FSRCNN(56, 12, 4), 91 + General-100", "paper", 4, 30.71, "FSRCNN",
            "af005f2ba6e90ef45f1807045c3f78132e15b57d9056e4691c79e34863dbdd4f", 59338),
    _fsrcnn("fsrcnn-s-x2-authors", "FSRCNN-s(32, 5, 1), 91 + General-100", "s", 2, 36.58, "FSRCNN-s",
            "eeed898988a960bd0e5313d4e8e8e6491dfde51eb78fb66935170b07452edd04", 19290),
    _fsrcnn("fsrcnn-s-x3-authors", "FSRCNN-s(32, 5, 1), 91 + General-100", "s", 3, 32.61, "FSRCNN-s",
            "1252c30126461e0ef4a1acf616e8f9cca4ac8a34285d48e88f6b4d410933876f", 19222),
    _fsrcnn("fsrcnn-s-x4-authors", "FSRCNN-s(32, 5, 1), 91 + General-100", "s", 4, 30.11, "FSRCNN-s",
            "6d06bd2293b518338cb89685f2a90b73f50d582bd55f3847197a852186ec6f88", 19208),
    AuthorsModel(
        name="vdsr-authors", paper="Kim et al., CVPR 2016", network="VDSR, 20 layers, one network for x2-x4",
        model="vdsr", build={"size": "paper"}, scales=(2, 3, 4), published={2: 37.53, 3: 33.66, 4: 31.35},
        file="VDSR/VDSR_Official.mat", **_github(_VDSR, "Test/VDSR_Official.mat"), terms=_VDSR_TERMS,
        converter="vdsr", protocol="matlab",
        sha256="f613166660840af1a2ca47e31b0337b951e7c4e094364f6135a16d81a55c323c", size=2490083),
    *(AuthorsModel(
        name=f"lapsrn-x{s}-authors", paper="Lai et al., CVPR 2017",
        network=f"LapSRN x{s}, {depth} convolutions per level", model="lapsrn", build={"size": "paper"},
        scales=(s,), published={s: published}, file=f"LapSRN/LapSRN_x{s}.mat",
        **_github(_LAPSRN, f"pretrained_models/LapSRN_x{s}.mat"), terms=_LAPSRN_TERMS, converter="lapsrn",
        protocol="lapsrn", sha256=sha256, size=nbytes)
      for s, depth, published, sha256, nbytes in (
          (2, 10, 37.52, "e368225004e2d5e49d772c5c4eb16c3f28f7fe3b68fec7a9bb91f55e25602baa", 1518234),
          (4, 10, 31.54, "1d845a3efdca8848968df9e216931419e3b1122373a233d612b4f599985e6367", 3032853),
          (8, 5, 26.14, "a887221465fe22ebda8ad5963cf812db807e7a9aa8e9d9453aee60e237af5e10", 2486279))),
    # Download-only: too large to keep with the test data. Set5 figures of EDSR's and MDSR's
    # benchmark table (Lim et al., Table 3); the paper gives the baseline's on DIV2K only.
    *(AuthorsModel(
        name=f"edsr-baseline-x{s}-authors", paper="Lim et al., CVPRW 2017", network="EDSR baseline, 16 x 64",
        model="edsr", build={"size": "baseline"}, scales=(s,), published={s: None},
        file=f"EDSR/edsr_baseline_x{s}-{tag}.pt", url=f"{_EDSR_SERVER}edsr_baseline_x{s}-{tag}.pt",
        source=_EDSR_CODE.format("edsr"), terms=_EDSR_TERMS, converter="edsr", protocol="edsr")
      for s, tag in ((2, "1bc95232"), (3, "abf2a44e"), (4, "6b446fab"))),
    *(AuthorsModel(
        name=f"edsr-x{s}-authors", paper="Lim et al., CVPRW 2017", network="EDSR, 32 x 256",
        model="edsr", build={"size": "paper"}, scales=(s,), published={s: published},
        file=f"EDSR/edsr_x{s}-{tag}.pt", url=f"{_EDSR_SERVER}edsr_x{s}-{tag}.pt",
        source=_EDSR_CODE.format("edsr"), terms=_EDSR_TERMS, converter="edsr", protocol="edsr")
      for s, tag, published in ((2, "0edfb8a3", 38.11), (3, "ea3ef2c6", 34.65), (4, "4f62e9ef", 32.46))),
    AuthorsModel(
        name="mdsr-authors", paper="Lim et al., CVPRW 2017", network="MDSR, 80 shared blocks, x2/x3/x4",
        model="mdsr", build={"size": "paper"}, scales=(2, 3, 4), published={2: 38.11, 3: 34.66, 4: 32.50},
        file="EDSR/mdsr-4a78bedf.pt", url=f"{_EDSR_SERVER}mdsr-4a78bedf.pt",
        source=_EDSR_CODE.format("mdsr") + " (versions of the file with a url table)", terms=_EDSR_TERMS,
        converter="mdsr", protocol="edsr"),
    AuthorsModel(
        name="drn-s-x4-authors", paper="Guo et al., CVPR 2020", network="DRN-S x4", model="drn",
        build={"size": "paper"}, scales=(4,), published={4: 32.68}, file="DRN/DRNS4x.pt",
        url=f"{_DRN_RELEASE}DRNS4x.pt", source="guoyongcs/DRN README: release v0.1, DRNS4x.pt", terms=_DRN_TERMS,
        converter="drn", protocol="edsr"),
    AuthorsModel(
        name="drn-l-x4-authors", paper="Guo et al., CVPR 2020", network="DRN-L x4", model="drn",
        build={"size": "large"}, scales=(4,), published={4: 32.74}, file="DRN/DRNL4x.pt",
        url=f"{_DRN_RELEASE}DRNL4x.pt", source="guoyongcs/DRN README: release v0.1, DRNL4x.pt", terms=_DRN_TERMS,
        converter="drn", protocol="edsr"),
]

AUTHORS: Mapping[str, AuthorsModel] = {entry.name: entry for entry in _ENTRIES}


def is_authors(name) -> bool:
    """Whether ``name`` names one of the authors' released models."""
    return isinstance(name, str) and name.lower() in AUTHORS


def authors_model(name: str) -> AuthorsModel:
    key = str(name).lower()
    if key not in AUTHORS:
        raise ValueError(f"unknown authors' model {name!r}; python -m srlib models --authors lists them")
    return AUTHORS[key]


def authors_names(local_only: bool = False, root=None) -> list[str]:
    """Names of the authors' models (only those whose file is in the data root, with ``local_only``)."""
    return [n for n in AUTHORS if not local_only or authors_path(n, root).is_file()]


def authors_path(name: str, root=None) -> Path:
    """Where the file of ``name`` is looked for, and downloaded to: ``<data root>/authors/<file>``."""
    from .data import data_root

    return data_root(root) / "authors" / authors_model(name).file


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recorded_sha256(entry: AuthorsModel, path: Path) -> str | None:
    """The published sha256, or the one recorded beside a file that has none published."""
    if entry.sha256:
        return entry.sha256
    record = path.with_name(path.name + ".sha256")
    return record.read_text().split()[0] if record.is_file() else None


def _download(entry: AuthorsModel, path: Path, progress: bool) -> None:
    from .datasets import DownloadError
    from .datasets.fetch import _retrieve
    from .files import write_atomically

    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _retrieve(entry.url, path.parent, path.name, known_hash=f"sha256:{entry.sha256}" if entry.sha256 else None,
                  what=f"{entry.name} file", progress=progress, max_bytes=MAX_DOWNLOAD_BYTES)
    except (DownloadError, OSError) as error:
        for folder in made:  # leave the data root as it was (an interrupted download keeps its .part to resume)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        reason = " ".join(str(error).split())
        raise FileNotFoundError(f"{entry.name}: {entry.file} is not in {path.parent} and could not be downloaded "
                                f"({reason}); download {entry.url} and put it at {path}") from None
    if not entry.sha256:  # nothing published to check against: record it, and check it from now on
        digest = _sha256(path)
        write_atomically(path.with_name(path.name + ".sha256"),
                         lambda tmp: Path(tmp).write_text(f"{digest}  {path.name}  {entry.url}\n"))


def fetch(name: str, root=None, download: bool = True, progress: bool = True) -> Path:
    """The checked file of ``name``: from the data root, else downloaded there first."""
    entry = authors_model(name)
    path = authors_path(name, root)
    if not path.is_file():
        if not download:
            raise FileNotFoundError(f"{entry.name}: no file at {path}; download {entry.url} and put it there")
        _download(entry, path, progress)
    expected = _recorded_sha256(entry, path)
    if expected and _sha256(path) != expected:
        digest = _sha256(path)
        other = next((e.name for e in AUTHORS.values() if e.sha256 == digest), None)
        if other:
            raise ValueError(f"{path} holds the weights of {other}, not of {entry.name}; "
                             f"put {entry.name}'s file there ({entry.url})")
        raise ValueError(f"{path} does not match the sha256 of {entry.name}'s file: it is damaged or was replaced; "
                         f"download it again from {entry.url}")
    return path


def _read(path: Path, entry: AuthorsModel) -> dict:
    """A MATLAB file's variables, or a PyTorch state dict (tensors only, no pickle code)."""
    if path.suffix == ".mat":
        import scipy.io

        try:
            if entry.converter == "lapsrn":  # a MatConvNet DagNN: structs with attributes
                return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
            return scipy.io.loadmat(path)
        except (ValueError, TypeError, OSError) as error:
            raise ValueError(f"{path} is not a readable MATLAB file ({error})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (torch raises many kinds for a file that is not a state dict)
        raise ValueError(f"{path} is not a PyTorch state dict ({' '.join(str(error).split())[:200]})") from None


def build_authors(name: str, scale: int | None = None) -> torch.nn.Module:
    """The srlib network that holds ``name``'s weights, freshly initialised."""
    from .models import build

    entry = authors_model(name)
    scale = entry.check_scale(scale)
    kwargs = {**entry.build, **entry.build_at.get(scale, {})}
    return build(entry.model, scale, **kwargs)


def load_authors(name: str, scale: int | None = None, root=None, device: str | torch.device = "cpu",
                 download: bool = True, progress: bool = True) -> torch.nn.Module:
    """srlib's network holding the authors' weights for ``name``, in float32 and eval mode.

    ``scale`` chooses the scale of the multi-scale models (``vdsr-authors``, ``mdsr-authors``)."""
    from . import convert

    entry = authors_model(name)
    model = build_authors(name, scale)
    path = fetch(name, root, download, progress)
    variables = _read(path, entry)
    try:
        state = getattr(convert, entry.converter)(variables)
    except (convert.ConversionError, KeyError, IndexError, AttributeError, ValueError) as error:
        raise ValueError(f"{path} does not hold {entry.name}'s network ({' '.join(str(error).split())})") from None
    own = model.state_dict()
    kept = {k for k in own if k.endswith("mean.shift") or k.startswith("dual_models.")}  # srlib's own / unused
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state and k not in kept]
    if wrong or missing:
        example = (wrong or missing)[0]
        raise ValueError(f"{path} does not hold {entry.name}'s network ({len(wrong)} tensors of another shape or "
                         f"name, {len(missing)} missing, e.g. {example})")
    model.load_state_dict({**own, **state})
    model.srlib_authors = {"name": entry.name, "file": str(path), "paper": entry.paper, "terms": entry.terms}
    return model.eval().to(device)


def list_authors() -> list[dict]:
    """One row per released model, for ``python -m srlib models --authors``."""
    rows = []
    for e in AUTHORS.values():
        published = " / ".join(f"x{s} {p:.2f}" if p is not None else f"x{s} -" for s, p in e.published.items())
        rows.append({"name": e.name, "paper": e.paper, "network": e.network, "Set5 published": published,
                     "source": e.source, "terms": e.terms})
    return rows


def recorded_figures() -> dict:
    """The Set5 and photograph figures measured with the authors' files (see tests/test_authors.py)."""
    return json.loads(MEASURED.read_text()) if MEASURED.is_file() else {}


def available(name: str, root=None) -> bool:
    """Whether the file of ``name`` is in the data root already (nothing is downloaded)."""
    return authors_path(name, root).is_file()


def how_to_get(name: str, root=None) -> str:
    """One line: where the file of ``name`` goes, whose it is and how srlib fetches it."""
    entry = authors_model(name)
    return (f"{name}: the authors' file ({entry.paper}; {entry.terms}) is not in {authors_path(name, root).parent}; "
            f"python -m srlib evaluate {name} --sets Set5 downloads it from {entry.url}")


def figures_table(models: list[tuple[str, int]], references: tuple[str, ...] = ()) -> str:
    """The recorded figures of the authors' ``(name, scale)`` models beside the recorded figures of the
    book's reference models, as text: Set5 published, under the paper's own protocol and under the
    book's, and the bundled photographs under the book's protocol."""
    from .reference import reference_info

    measured = recorded_figures().get("models", {})
    rows = []
    for name, scale in models:
        f = measured[name][str(scale)]
        rows.append([name, f"x{scale}", "-" if f["published"] is None else f["published"], f["set5"][f["protocol"]],
                     f["set5"]["book"], f["photos_book"]])
    for name in references:
        info = reference_info(name)
        rows.append([f"{name} (reference)", f"x{info['scale']}", "-", "-", info["measured"]["Set5"]["psnr"],
                     info["measured"]["embedded"]["psnr"]])
    first_at = {}  # one bicubic row per scale, from the first model at that scale
    for name, scale in models:
        first_at.setdefault(scale, measured[name][str(scale)])
    rows += [["bicubic", f"x{scale}", "-", "-", f["set5_bicubic"], f["photos_bicubic"]]
             for scale, f in first_at.items()]
    return table(["model", "scale", "published", "own protocol", "book", "photos"], rows,
                 ["", "", ".2f", ".2f", ".2f", ".2f"],
                 title="Set5 PSNR in dB; photos: the bundled photographs, under the book's protocol")
