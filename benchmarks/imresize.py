"""Time srlib's MATLAB-compatible imresize on a batch of 16 RGB images.

    python benchmarks/imresize.py

Cases: 512x512 down by 4, and 128x128 up by 4, in float32 and float64. For comparison it
also times the approach most Python ports of MATLAB's imresize take: per output pixel, a
gather of the kernel's taps and a weighted sum, one image at a time and batched. Both
implement the same MATLAB arithmetic; the check at the end confirms they agree.
"""
import math
import time

import numpy as np
import torch

from srlib.imresize import cubic, imresize


def _taps(in_len, scale):
    """Indices (0-based, mirrored) and weights of each output sample, MATLAB's way."""
    width = 4 / scale if scale < 1 else 4.0
    kernel = (lambda x: scale * cubic(scale * x)) if scale < 1 else cubic
    out_len = math.ceil(in_len * scale)
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    idx = np.floor(u - width / 2)[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    w = kernel(u[:, None] - idx)
    w /= w.sum(1, keepdims=True)
    fold = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    return torch.from_numpy(fold[(idx.astype(int) - 1) % (2 * in_len)]), torch.from_numpy(w)


def gather_resize(x, scale):
    """Gather-and-sum along each axis (the usual port); x is (..., H, W)."""
    for dim in (-2, -1):
        idx, w = _taps(x.shape[dim], scale)
        x = x.movedim(dim, -1)
        gathered = x[..., idx]  # (..., out, taps)
        x = (gathered * w.to(x.dtype)).sum(-1).movedim(-1, dim)
    return x


def best_time(fn, repeats=5):
    fn()  # warm-up (weight matrices cached, allocator warmed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'case':<26}{'dtype':<9}{'srlib':>10}{'gather/img':>12}{'gather/batch':>14}{'speed-up':>10}")
    for name, shape, scale in [("16x3x512x512 down x4", (16, 3, 512, 512), 0.25),
                               ("16x3x128x128 up x4", (16, 3, 128, 128), 4.0)]:
        for dtype in (torch.float32, torch.float64):
            x = torch.rand(shape, dtype=dtype)
            ours = best_time(lambda: imresize(x, scale))
            per_image = best_time(lambda: [gather_resize(img, scale) for img in x], repeats=3)
            batched = best_time(lambda: gather_resize(x, scale), repeats=3)
            gap = (imresize(x, scale) - gather_resize(x, scale)).abs().max().item()
            assert gap < (1e-4 if dtype == torch.float32 else 1e-12), gap
            print(f"{name:<26}{str(dtype)[6:]:<9}{ours:>9.3f}s{per_image:>11.3f}s{batched:>13.3f}s"
                  f"{min(per_image, batched) / ours:>9.1f}x")


if __name__ == "__main__":
    main()
