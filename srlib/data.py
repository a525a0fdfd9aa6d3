"""Images for training and testing, and the patch sampler every lab trains on.

Three sources of images:

* :func:`sample_images` - real photographs shipped inside scikit-image, so every notebook
  runs offline with no download. They are split once and for all into a training list, one
  validation photograph (for training curves) and a held-out test list; no photograph is in
  two of them (the two views of the stereo motorcycle pair are nearly the same picture, so
  both are on the training side). Two bundled images are left out on purpose: the retina
  scan and the Hubble deep field are mostly black, and since patches are drawn in proportion
  to image area they would have supplied about half of all training patches, nearly empty.
* :func:`load_set` - the standard benchmark and training sets (Set5, Set14, BSD100,
  Urban100, T91, BSD200, General100, DIV2K) from the data root
  (:func:`data_root`: the ``root`` argument, else the ``SRLIB_DATA`` environment variable,
  else ``./data``). ``python -m srlib download`` (:mod:`srlib.datasets`) fetches them.
* :class:`PatchDataset` - random HR patches and their LR counterparts for training.

Images are kept as numpy ``uint8`` arrays, ``(H, W, 3)`` for colour and ``(H, W)`` for
grayscale, as stored on disk and turned upright as their EXIF orientation says; conversion to
tensors happens in one place, :func:`to_tensor`. A file that declares more pixels than
``SRLIB_MAX_IMAGE_PIXELS`` (default: Pillow's limit, about 89 million) is refused before it is
decoded: a few kilobytes can declare gigapixels (a "decompression bomb").
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .color import rgb_to_y
from .degradations import DEGRADATIONS, degrade, network_input
from .files import data_root
from .metrics import mod_crop
from .progress import tqdm_auto

__all__ = [
    "TRAIN_SAMPLES", "VALIDATION_SAMPLES", "TEST_SAMPLES", "sample_images", "center_crops", "load_set", "load_image",
    "data_root", "max_image_pixels", "to_tensor", "PatchDataset", "dihedral",
]

# scikit-image's bundled photographs: name -> loader attribute in skimage.data.
TRAIN_SAMPLES = (
    "motorcycle_left", "motorcycle_right", "immunohistochemistry", "moon", "coins", "clock",
    "brick", "grass", "gravel", "page", "text", "cell",
)
VALIDATION_SAMPLES = ("camera",)
TEST_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    tqdm_auto()  # scikit-image reads through pooch, which imports tqdm.auto: quietly first
    if name.startswith("motorcycle_"):
        left, right, _disparity = skimage.data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skimage.data, name)()


def sample_images(split: str = "test") -> dict[str, np.ndarray]:
    """The embedded photographs of one split, ``"train"``, ``"val"`` or ``"test"``, as uint8 arrays."""
    names = {"train": TRAIN_SAMPLES, "val": VALIDATION_SAMPLES, "test": TEST_SAMPLES}
    if split not in names:
        raise ValueError(f"unknown split {split!r}; use 'train', 'val' or 'test'.")
    return {name: _to_uint8_image(_skimage_photo(name), name) for name in names[split]}


def center_crops(images: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """The central ``size`` x ``size`` crop of every image: a cheap validation set for training curves."""
    crops = {}
    for name, img in images.items():
        h, w = img.shape[:2]
        if min(h, w) < size:
            raise ValueError(f"{name} ({h}x{w}) is smaller than the crop size {size}.")
        top, left = (h - size) // 2, (w - size) // 2
        crops[name] = img[top: top + size, left: left + size]
    return crops


def _to_uint8_image(arr: np.ndarray, name: str) -> np.ndarray:
    """Normalise any decoded image to uint8 (H, W) or (H, W, 3), saying what was converted."""
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        raise ValueError(f"{name}: a binary (1-bit) image is not a photograph; convert it to 8-bit first.")
    if arr.dtype == np.uint16:
        # 16-bit PNG: keep the 8 most significant bits, the precision every benchmark uses.
        arr = np.round(arr.astype(np.float64) / 257).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ValueError(f"{name}: unsupported pixel type {arr.dtype}; expected 8- or 16-bit images.")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        if (arr[:, :, 3] != 255).any():
            raise ValueError(f"{name}: RGBA image with transparent pixels; flatten it onto a background "
                             "(e.g. PIL: Image.alpha_composite) and save it as RGB.")
        arr = arr[:, :, :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"{name}: expected a grayscale or RGB image, got shape {arr.shape}.")
    return np.ascontiguousarray(arr)


def max_image_pixels() -> int:
    """The largest image :func:`load_image` decodes: ``$SRLIB_MAX_IMAGE_PIXELS``, else Pillow's limit."""
    from PIL import Image

    text = os.environ.get("SRLIB_MAX_IMAGE_PIXELS", "").strip().replace("_", "")
    if not text:
        return int(Image.MAX_IMAGE_PIXELS or 0) or 2**62  # Pillow's None means no limit
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"SRLIB_MAX_IMAGE_PIXELS must be a whole number of pixels, got {text!r}")
    return int(text)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 ``(H, W, 3)`` or ``(H, W)``, upright as its EXIF orientation says.

    Conversions are explicit: palette images become RGB, 16-bit images keep their top 8
    bits, opaque RGBA drops its alpha channel; transparent RGBA is refused. A file that cannot
    be decoded (empty, truncated, not an image) or that declares more pixels than
    :func:`max_image_pixels` is a ``ValueError`` naming the file.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    limit = max_image_pixels()
    try:
        with _pillow_pixel_limit(limit), Image.open(path) as im:
            if im.width * im.height > limit:  # only the header is read so far
                raise _too_large(path, f"{im.width}x{im.height} = {im.width * im.height:,} pixels", limit)
            im.load()
            im = ImageOps.exif_transpose(im)  # cameras store photos sideways and say so in EXIF
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode in ("LA", "PA"):
                im = im.convert("RGBA")
            elif im.mode == "CMYK" or im.mode == "YCbCr":
                im = im.convert("RGB")
            elif im.mode == "1":
                im = im.convert("L")
            arr = np.array(im)
    except _TooLarge:
        raise
    except Image.DecompressionBombError as error:  # Pillow refuses at twice its limit, before our check
        declared = re.search(r"\((\d+) pixels\)", str(error))
        raise _too_large(path, f"{int(declared[1]):,} pixels" if declared else "the image", limit) from None
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow's words for an empty, truncated or foreign file: UnidentifiedImageError, OSError, SyntaxError.
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{path}: cannot read it as an image ({reason}); the file is empty, truncated, "
                         "damaged or not an image") from None
    if arr.dtype == np.int32 or arr.dtype == np.int64 or arr.dtype == np.uint32:  # PIL's "I" mode
        if arr.max() > 65535 or arr.min() < 0:
            raise ValueError(f"{path.name}: pixel values outside 0..65535; not an image this library reads.")
        arr = arr.astype(np.uint16)
    return _to_uint8_image(arr, path.name)


class _TooLarge(ValueError):
    """An image declaring more pixels than :func:`max_image_pixels` allows."""


def _too_large(path: Path, size: str, limit: int) -> _TooLarge:
    return _TooLarge(f"{path}: {size} is more than the {limit:,} allowed (a guard against decompression bombs); "
                     "if you trust the file, raise the limit with the environment variable SRLIB_MAX_IMAGE_PIXELS")


@contextlib.contextmanager
def _pillow_pixel_limit(limit: int):
    """Pillow's own decompression-bomb guard at ``limit`` for a while (its warning is left to our check)."""
    from PIL import Image

    before, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def _image_files(folder: Path) -> list[Path]:
    """The image files of a set folder, sorted; hidden files and other files are skipped with a warning."""
    files, skipped = [], []
    for p in sorted(folder.iterdir()):
        # macOS leaves "._name.png" (resource forks) and ".DS_Store" beside copied files.
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(p.name + ("/" if p.is_dir() else ""))
        else:
            files.append(p)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"{folder}: skipped {len(skipped)} hidden or non-image entries ({shown})", stacklevel=3)
    return files


def load_set(name: str, root: str | os.PathLike | None = None, limit: int | None = None) -> dict[str, np.ndarray]:
    """Load every image of a data set folder ``<root>/<name>/`` (sorted by file name).

    Hidden files (``._photo.png``, ``.DS_Store``) and files that are not images are skipped
    with a warning; an image file that cannot be read is an error naming it.
    """
    folder = data_root(root) / name
    if not folder.is_dir():
        from .datasets import SETS  # here, not at the top: loading a set does without the installer

        known = f" ({SETS[name]})" if name in SETS else ""
        raise FileNotFoundError(
            f"data set {name}{known} not found in {folder.parent.resolve()}. Download it with\n"
            f"    python -m srlib download {name} --root {folder.parent}\n"
            f"(in a checkout of the book: python data_scripts/download.py {name} --root {folder.parent})\n"
            "or point the SRLIB_DATA environment variable at the folder that holds it."
        )
    files = _image_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return {p.stem: load_image(p) for p in files[:limit]}


def to_tensor(img: np.ndarray, channels: str = "rgb", dtype=torch.float32) -> torch.Tensor:
    """uint8 image to a ``(1, C, H, W)`` tensor in [0, 1].

    ``channels="y"``: the luminance (rounded like MATLAB's ``rgb2ycbcr``; a grayscale
    image is its own Y). ``channels="rgb"``: colour (a grayscale image is repeated).
    """
    if img.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {img.dtype}; load files with srlib.data.load_image.")
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (H, W, 3), got shape {img.shape}.")
    t = torch.from_numpy(np.array(img)).to(torch.float64) / 255
    t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
    if channels == "y":
        t = t if t.shape[0] == 1 else rgb_to_y(t)
    elif channels == "rgb":
        t = t.repeat(3, 1, 1) if t.shape[0] == 1 else t
    else:
        raise ValueError(f"channels must be 'y' or 'rgb', got {channels!r}.")
    return t[None].to(dtype)


class PatchDataset(Dataset):
    """Random (network input, HR) patch pairs cut from a list of images.

    The LR version of every image is made once, up front, with the exact MATLAB bicubic
    (or another :data:`~srlib.degradations.DEGRADATIONS`); a training step only copies
    windows out of them, a whole batch at a time (:meth:`batch`), so the data pipeline
    never slows training down.

    Args:
        images: dict or list of uint8 images (see :func:`load_set`, :func:`sample_images`).
        scale: the upscaling factor, or ``scales`` for multi-scale training (VDSR).
        patch_size: side of the HR patch. With LR input it must divide by the scale.
        channels: ``"y"`` or ``"rgb"``.
        upsampled: give the network the bicubic-upscaled LR patch (SRCNN, VDSR, ...)
            instead of the LR patch itself.
        augment: random flips and 90-degree rotations (the 8 symmetries of the square).
        scales: several scales to mix (VDSR, MDSR). With ``upsampled=True`` every patch
            draws its own scale; with LR input the inputs of different scales differ in size,
            so a whole batch shares one scale, drawn at random per batch (MDSR's training),
            and ``patch_size`` must divide by every scale.
        length: nominal number of patches in one pass; patch ``i`` is a pure function of
            ``(seed, i)``, which makes runs repeatable and resumable.

    Images smaller than the patch are left out, with one warning that counts them (T91 holds
    images of 78 x 78 pixels; the papers' 96- to 384-pixel patches were cut from DIV2K). If no
    image is large enough, the patch shrinks to the largest that half of the images hold, with a
    warning; :attr:`patch_size` is the size in use.
    """

    def __init__(self, images, scale: int | None = None, patch_size: int = 48, channels: str = "y",
                 upsampled: bool = False, augment: bool = True, degradation: str = "bicubic",
                 scales: tuple[int, ...] | None = None, length: int = 1_000_000, seed: int = 0):
        imgs = list(images.values()) if isinstance(images, dict) else list(images)
        names = list(images.keys()) if isinstance(images, dict) else [f"image {i}" for i in range(len(imgs))]
        if not imgs:
            raise ValueError("PatchDataset needs at least one image.")
        if (scale is None) == (scales is None):
            raise ValueError("give exactly one of `scale` or `scales`.")
        self.scales = tuple(scales) if scales is not None else (scale,)
        if any(not isinstance(s, int) or s < 1 for s in self.scales):
            raise ValueError(f"scales must be positive integers, got {self.scales}.")
        if not upsampled and any(patch_size % s for s in self.scales):
            what = "every scale" if len(self.scales) > 1 else "the scale"
            raise ValueError(f"patch_size {patch_size} must divide by {what} {self.scales} for LR input.")
        if degradation not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {degradation!r}; choose one of {', '.join(DEGRADATIONS)}.")
        patch_size, names, imgs = _fitting_patch(patch_size, names, imgs, 1 if upsampled else math.lcm(*self.scales))
        self.patch_size, self.upsampled, self.augment = patch_size, upsampled, augment
        # With LR input, batch() draws one scale for all the patches it returns: a loader must ask
        # for one training batch per call (srlib.train does).
        self.one_scale_per_call = len(self.scales) > 1 and not upsampled
        self.length, self.seed, self.channels = length, seed, channels

        # Precompute, per scale and image: HR, and the network input (LR or upscaled LR).
        self.pairs: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for s in self.scales:
            pairs = []
            for img in imgs:
                hr = to_tensor(mod_crop(img, s), channels, dtype=torch.float64)
                noise = {"generator": torch.Generator().manual_seed(seed)} if degradation == "noise" else {}
                lr = degrade(hr, s, degradation, **noise)
                net_in = network_input(lr, s, upsampled)
                pairs.append((net_in[0].float().contiguous(), hr[0].float().contiguous()))
            self.pairs[s] = pairs
        areas = np.array([hr.shape[-1] * hr.shape[-2] for _, hr in self.pairs[self.scales[0]]], dtype=np.float64)
        self.weights = areas / areas.sum()  # big images give proportionally more patches
        cdf = self.weights.cumsum()
        self._cdf = cdf / cdf[-1]  # a uniform u picks image i if cdf[i-1] <= u < cdf[i]; ends at exactly 1
        # NumPy views of the same memory: slicing and flipping them costs far less than tensor ops.
        self._arrays = [[(x.numpy(), y.numpy()) for x, y in self.pairs[s]] for s in self.scales]
        self._input_sizes = np.array([[x.shape[-2:] for x, _ in pairs] for pairs in self._arrays])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch([index])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """What a DataLoader calls to fetch a whole batch at once."""
        return list(zip(*self.batch(indices)))

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches ``indices``, stacked: network inputs ``(n, C, h, w)`` and HR targets ``(n, C, H, W)``.

        The random choices of all patches are drawn together (:func:`_uniform`); then each patch
        is a single copy from a view of its image, turned and flipped by striding alone.
        """
        n, p = len(indices), self.patch_size
        u = _uniform(self.seed, indices, 5)  # per patch: scale, image, top, left, symmetry
        scale_index = (u[:, 0] * len(self.scales)).astype(np.int64)
        if not self.upsampled:  # LR inputs of different scales differ in size: one scale for the batch,
            # the whole batch's first patch's, which under torchrun every process knows (BatchPart.first)
            first = getattr(indices, "first", indices[0])
            scale_index[:] = int(_uniform(self.seed, [first], 5)[0, 0] * len(self.scales))
        p_in = p if self.upsampled else p // self.scales[scale_index[0]]
        image = np.searchsorted(self._cdf, u[:, 1], side="right")
        positions = self._input_sizes[scale_index, image] - p_in + 1  # (n, 2): where a patch can start
        top, left = (u[:, 2:4] * positions).astype(np.int64).T
        symmetry = (u[:, 4] * 8).astype(np.int64) if self.augment else np.zeros(n, np.int64)
        channels = self.pairs[self.scales[0]][0][1].shape[0]
        xs = np.empty((n, channels, p_in, p_in), np.float32)
        ys = np.empty((n, channels, p, p), np.float32)
        draws = zip(scale_index.tolist(), image.tolist(), top.tolist(), left.tolist(), symmetry.tolist())
        for j, (s, i, row, col, k) in enumerate(draws):
            net_in, hr = self._arrays[s][i]
            f = 1 if self.upsampled else self.scales[s]  # HR pixels per input pixel
            xs[j] = _dihedral_view(net_in[:, row: row + p_in, col: col + p_in], k)
            ys[j] = _dihedral_view(hr[:, f * row: f * row + p, f * col: f * col + p], k)
        return torch.from_numpy(xs), torch.from_numpy(ys)


def _fitting_patch(patch_size: int, names: list[str], imgs: list[np.ndarray], multiple: int):
    """The patch size to use and the images it fits in, with a warning for what had to change."""
    if patch_size < 1:
        raise ValueError(f"patch_size must be a positive number of pixels, got {patch_size}.")
    sides = [min(img.shape[:2]) for img in imgs]
    notes = []
    if max(sides) < patch_size:  # nothing fits: the largest patch that half of the images hold
        capped = sorted(sides)[(len(sides) - 1) // 2] // multiple * multiple
        if capped < multiple:
            raise ValueError(f"half of the images are smaller than one patch of {multiple} pixels; "
                             "use larger images.")
        notes.append(f"patch size {patch_size} capped at {capped}, the largest that half of the images hold")
        patch_size = capped
    keep = [i for i, side in enumerate(sides) if side >= patch_size]
    if len(keep) < len(imgs):
        small = [names[i] for i in range(len(imgs)) if sides[i] < patch_size]
        examples = ", ".join(small[:3]) + (", ..." if len(small) > 3 else "")
        notes.append(f"{len(small)} of {len(imgs)} images are smaller than the {patch_size}-pixel patch "
                     f"and are left out ({examples})")
    if notes:
        warnings.warn("PatchDataset: " + "; ".join(notes) + ".", stacklevel=3)
    return patch_size, [names[i] for i in keep], [imgs[i] for i in keep]


def dihedral(t: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The k-th of the 8 symmetries of the square: ``k % 4`` quarter turns, then a flip if ``k >= 4``;
    with ``inverse``, the symmetry that undoes it.

    These are the augmentations of :class:`PatchDataset` (``augment=True``) and the eight passes of
    the self-ensemble (:func:`srlib.inference.self_ensemble`).
    """
    if inverse:
        t = t.flip(-1) if k >= 4 else t
        return torch.rot90(t, -(k % 4), dims=(-2, -1))
    t = torch.rot90(t, k % 4, dims=(-2, -1))
    return t.flip(-1) if k >= 4 else t


def _dihedral_view(a: np.ndarray, k: int) -> np.ndarray:
    """:func:`dihedral` for a NumPy array, as a view: the same symmetry, no copy."""
    turns = k % 4
    if turns == 1:
        a = a[..., ::-1].swapaxes(-1, -2)
    elif turns == 2:
        a = a[..., ::-1, ::-1]
    elif turns == 3:
        a = a.swapaxes(-1, -2)[..., ::-1]
    return a[..., ::-1] if k >= 4 else a


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _uniform(seed: int, indices: list[int], n: int) -> np.ndarray:
    """``n`` numbers in [0, 1) for every index: an ``(len(indices), n)`` array, a pure function of ``(seed, index)``.

    A counter-based generator: SplitMix64's mixing function applied to the counter
    ``(seed, index, draw)``. Unlike a seeded generator object per patch, it computes any
    patch's numbers directly, for a whole batch in a few array operations.
    """
    key = _splitmix64(np.array([seed % 2**64], dtype=np.uint64))
    counter = np.asarray(indices, dtype=np.uint64)[:, None] * np.uint64(n) + np.arange(n, dtype=np.uint64)
    return (_splitmix64(counter * _GOLDEN + key) >> np.uint64(11)) * 2.0**-53  # 53 random bits each


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a bijection of 64-bit words that scrambles every input bit."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1  # uint64 arithmetic wraps around, as the hash intends
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))
