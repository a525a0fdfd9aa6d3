"""How close do srlib's evaluation, SSIM, resize and training loop run to the bare arithmetic?

    python benchmarks/evaluate.py
    python benchmarks/evaluate.py --repeats 7 --fit-runs 6

One run prints four comparisons, each a ratio measured side by side:

* ``evaluate``: :func:`srlib.evaluate.evaluate` with bicubic alone at x4 (Y channel, PSNR
  and SSIM) against a bare pipeline of the same steps: numpy Y conversion, srlib's imresize
  down and up, numpy PSNR and an SSIM built on OpenCV's ``filter2D`` (the way BasicSR
  computes it). The images are the four test photographs resized to 644 x 1024 (0.66
  megapixels), the size of the large test sets.
* SSIM on one such image: srlib against the OpenCV version (and the values of both);
* imresize against the gather-and-sum resize of most Python ports (BasicSR's among them),
  both ways: the cases of ``benchmarks/imresize.py``;
* ``fit`` against a bare PyTorch loop: the loops of ``benchmarks/loop.py``, the ratio of
  every run (best and worst).

Timings are the best of ``--repeats`` after a warm-up, and depend on whatever else the
machine runs: the load average is printed before and after. OpenCV is needed for the
reference SSIM only: ``pip install opencv-python-headless``.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("srlib") is None:  # running from a checkout without installing
    sys.path.insert(0, str(HERE.parent))

from srlib.data import sample_images  # noqa: E402
from srlib.evaluate import evaluate  # noqa: E402
from srlib.imresize import imresize  # noqa: E402
from srlib.metrics import ssim  # noqa: E402

SCALE, SIZE = 4, (644, 1024)


@functools.lru_cache(maxsize=None)
def load_benchmark(name: str):
    """Another benchmark of this folder, as a module (its helpers are reused, not copied)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_time(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls after a warm-up (the resize benchmark's timer)."""
    return load_benchmark("imresize").best_time(fn, repeats)


def large_images() -> dict[str, np.ndarray]:
    """The test photographs resized to 644 x 1024 with srlib's bicubic (uint8)."""
    return {name: imresize(img, output_size=SIZE) for name, img in sample_images("test").items()}


# The bare pipeline: the protocol's steps written directly, with nothing checked.

def bare_y(img: np.ndarray) -> np.ndarray:
    """BT.601 Y on 0..255, rounded as MATLAB's rgb2ycbcr does for uint8 input."""
    rgb = img.astype(np.float64)
    return np.round(16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255)


def opencv_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two float64 images on 0..255: 11x11 Gaussian (sigma 1.5) by filter2D, 'valid' part."""
    import cv2

    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def local_mean(x):
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a, var_b = local_mean(a * a) - mu_a**2, local_mean(b * b) - mu_b**2
    cov = local_mean(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def bare_pipeline(images: dict[str, np.ndarray], scale: int) -> list[tuple[float, float]]:
    results = []
    for img in images.values():
        h, w = img.shape[:2]
        y = bare_y(img[: h - h % scale, : w - w % scale]) / 255
        hr = torch.from_numpy(y)[None, None]
        lr = imresize(hr, 1 / scale).clamp(0, 1).mul(255).round().div(255)
        up = imresize(lr, scale).clamp(0, 1).mul(255).round()[0, 0].numpy()
        a, b = up[scale:-scale, scale:-scale], hr[0, 0].numpy()[scale:-scale, scale:-scale] * 255
        psnr = 10 * np.log10(255**2 / np.mean((a - b) ** 2))
        results.append((psnr, opencv_ssim(a, b)))
    return results


def compare_evaluate(images, repeats: int) -> None:
    ours = evaluate(None, images, SCALE)
    bare = bare_pipeline(images, SCALE)
    psnr_gap = max(abs(p - q) for (p, _), q in zip(bare, ours.psnr))
    ssim_gap = max(abs(s - t) for (_, s), t in zip(bare, ours.ssim))
    t_ours = best_time(lambda: evaluate(None, images, SCALE), repeats)
    t_bare = best_time(lambda: bare_pipeline(images, SCALE), repeats)
    n = len(images)
    print(f"evaluate, bicubic x{SCALE}, {n} images {SIZE[0]}x{SIZE[1]}: srlib {t_ours * 1e3:7.1f} ms "
          f"({n / t_ours:.1f} images/s), bare pipeline {t_bare * 1e3:7.1f} ms: ratio {t_ours / t_bare:.2f}x "
          f"(largest differences: PSNR {psnr_gap:.1e} dB, SSIM {ssim_gap:.1e})")


def compare_ssim(images, repeats: int) -> None:
    img = next(iter(images.values()))
    hr = bare_y(img)
    lr = imresize(torch.from_numpy(hr / 255)[None, None], 1 / SCALE).clamp(0, 1).mul(255).round().div(255)
    sr = imresize(lr, SCALE).clamp(0, 1).mul(255).round()[0, 0].numpy()
    a, b = torch.from_numpy(sr / 255)[None, None], torch.from_numpy(hr / 255)[None, None]
    t_ours = best_time(lambda: ssim(a, b), repeats)
    t_cv = best_time(lambda: opencv_ssim(sr, hr), repeats)
    print(f"SSIM, one {hr.shape[0]}x{hr.shape[1]} image: srlib {t_ours * 1e3:6.1f} ms, OpenCV {t_cv * 1e3:6.1f} ms: "
          f"ratio {t_ours / t_cv:.2f}x (values {ssim(a, b).item():.10f} and {opencv_ssim(sr, hr):.10f})")


def compare_imresize(repeats: int) -> None:
    gather_resize = load_benchmark("imresize").gather_resize
    torch.manual_seed(0)
    for name, shape, scale in [("16x3x512x512 down x4", (16, 3, 512, 512), 0.25),
                               ("16x3x128x128 up x4", (16, 3, 128, 128), 4.0)]:
        for dtype in (torch.float32, torch.float64):
            x = torch.rand(shape, dtype=dtype)
            ours = best_time(lambda: imresize(x, scale), repeats)
            per_image = best_time(lambda: [gather_resize(img, scale) for img in x], max(1, repeats // 2))
            batched = best_time(lambda: gather_resize(x, scale), max(1, repeats // 2))
            print(f"imresize {name}, {str(dtype)[6:]}: srlib {ours * 1e3:6.1f} ms, gather-and-sum "
                  f"{min(per_image, batched) * 1e3:6.1f} ms: speed-up {min(per_image, batched) / ours:.1f}x")


def compare_fit(runs: int, steps: int) -> None:
    loop = load_benchmark("loop")
    source, train_images = loop.training_images()
    data = loop.PatchDataset(train_images, loop.SCALE, patch_size=loop.PATCH, channels="y")
    batch = data.batch(list(range(loop.BATCH)))
    loop.bare_loop(batch, max(10, steps // 10))  # warm-up
    loop.fit_loop(data, max(10, steps // 10))
    ratios = []
    for _ in range(runs):  # alternate, so that a change in load hits both alike
        bare = loop.bare_loop(batch, steps)
        fit = loop.fit_loop(data, steps)
        ratios.append(bare / fit)
    print(f"fit against the bare loop ({loop.MODEL} x{loop.SCALE}, {steps} steps, {source}), {runs} runs: "
          f"best {max(ratios):.0%}, worst {min(ratios):.0%} ({', '.join(f'{r:.0%}' for r in ratios)})")


def load_average() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each case; the best counts")
    parser.add_argument("--fit-runs", type=int, default=4, help="runs of fit and of the bare loop")
    parser.add_argument("--fit-steps", type=int, default=300, help="steps per fit run")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("cv2") is None:
        sys.exit("benchmarks/evaluate.py compares against OpenCV's filter: pip install opencv-python-headless")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {load_average()}")
    images = large_images()
    compare_evaluate(images, args.repeats)
    compare_ssim(images, args.repeats)
    compare_imresize(args.repeats)
    compare_fit(args.fit_runs, args.fit_steps)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
