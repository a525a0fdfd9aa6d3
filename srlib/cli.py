"""Command line: ``python -m srlib {models,train,evaluate,upscale,download}``.

    python -m srlib models
    python -m srlib train fsrcnn --scale 3 --steps 500 --out checkpoints/fsrcnn_x3.pt
    python -m srlib evaluate checkpoints/fsrcnn_x3.pt bicubic --sets Set5 embedded
    python -m srlib upscale checkpoints/fsrcnn_x3.pt photo.png --out-dir upscaled/
    python -m srlib upscale espcn-x3 photo.png          # a reference model, by name
    python -m srlib download Set5 T91

Training data is ``embedded`` (scikit-image photographs) or a set under the data root
(``--root`` or ``$SRLIB_DATA``). Checkpoints carry the model name, configuration, scale and
training facts, and are loaded with ``weights_only=True``. ``torchrun --nproc_per_node=N -m srlib
train ...`` trains in N processes (DistributedDataParallel, see :mod:`srlib.distributed`); rank 0
validates, prints and writes the checkpoint, and ``--batch-size`` is per process.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from . import datasets

__all__ = ["main"]


def _images(name: str, root, split: str):
    from .data import load_set, sample_images

    return sample_images(split) if name == "embedded" else load_set(name, root)


def _print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths)))


def cmd_models(args) -> int:
    from .models import list_models
    from .reference import reference_info, reference_names

    _print_table(list_models())
    references = []
    for name in reference_names():
        info = reference_info(name)
        set5 = info["measured"].get("Set5")
        references.append({
            "reference model": name, "network": f"{info['paper']} {info['recipe']['size']}",
            "Set5 PSNR / SSIM": f"{set5['psnr']:.2f} / {set5['ssim']:.4f}" if set5 else "-",
            "bicubic": f"{set5['bicubic_psnr']:.2f} / {set5['bicubic_ssim']:.4f}" if set5 else "-",
            "trained": f"{info['recipe']['steps']:,} steps, {info['seconds'] / 60:.0f} min CPU",
        })
    if references:
        print("\nReference models (trained on T91 + BSD200; use a name wherever a checkpoint is expected):")
        _print_table(references)
    return 0


def cmd_train(args) -> int:
    from .budget import get_budget
    from .data import PatchDataset
    from .device import pick_device
    from .distributed import leave, this_process
    from .evaluate import evaluate
    from .models import build, spec
    from .train import fit

    model_spec = spec(args.model)
    budget = get_budget(args.budget)
    size = args.size or budget.model_size
    if size not in model_spec.sizes:
        size = "paper" if size != "quick" else next(iter(model_spec.sizes))
    model = build(args.model, args.scale, size=size)
    steps = args.steps or budget.steps
    patch = args.patch_size or budget.patch_size
    patch -= patch % args.scale
    channels = "y" if model_spec.channels == 1 else "rgb"
    upsampled = model_spec.input == "upsampled"
    train_images = {}
    for name in args.data:
        train_images.update({f"{name}/{k}": v for k, v in _images(name, args.root, "train").items()})
    data = PatchDataset(train_images, args.scale, patch_size=patch, channels=channels,
                        upsampled=upsampled, seed=args.seed)
    held_out = _images("embedded", None, "test")

    def validate(m):
        return evaluate(m, held_out, args.scale).mean_psnr

    out = Path(args.out or f"checkpoints/{args.model}_{size}_x{args.scale}.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    batch_size = args.batch_size or budget.batch_size
    world = this_process()  # under torchrun, one of several: rank 0 prints (fit validates and saves there)
    processes = f" x {world.size} processes, {world.size * batch_size} patches per step" if world.size > 1 else ""
    if world.main:
        print(f"training {model_spec.paper_name} ({size}) x{args.scale} for {steps} steps on "
              f"{', '.join(args.data)} ({len(train_images)} images), budget {budget.name}, "
              f"device {pick_device(args.device)}{processes}; checkpoint {out}")
    try:
        history = fit(model, data, steps=steps, loss_fn=model_spec.loss, lr=args.lr, batch_size=batch_size,
                      validate=validate, eval_every=args.eval_every or budget.eval_every, checkpoint=out,
                      checkpoint_every=budget.checkpoint_every, amp=budget.amp, device=args.device, seed=args.seed,
                      progress=not args.no_progress)
    finally:
        leave()  # the process group fit joined under torchrun
    if world.main:
        last = history.val[-1][1] if history.val else float("nan")
        print(f"done: {len(history.steps)} steps, held-out PSNR {last:.2f} dB; saved {out}")
    return 0


def _load(source: str):
    """A model from a reference name (``espcn-x3``), a reference weights file or a checkpoint."""
    from .checkpoint import load_model
    from .reference import is_reference, load_reference

    if (is_reference(source) and not os.path.exists(source)) or str(source).endswith(".safetensors"):
        return load_reference(source)
    return load_model(source)


def _label(source: str) -> str:
    return source if not os.path.exists(source) else Path(source).stem


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    models = {name: None if name == "bicubic" else _load(name) for name in args.models}
    trained_scales = [m.scale for m in models.values() if m is not None]
    runs = []
    for name, model in models.items():
        # bicubic runs at --scale, else at the scale of the checkpoints it is compared with.
        scale = args.scale or (model.scale if model is not None else (trained_scales or [None])[0])
        if scale is None:
            raise SystemExit("error: give --scale to evaluate bicubic on its own.")
        if model is not None and args.scale and args.scale != model.scale:
            raise SystemExit(f"error: {name} was trained for x{model.scale}, not x{args.scale}.")
        label = "bicubic" if model is None else _label(name)
        runs.append((label, model, scale))
    sets = {s: _images(s, args.root, "test") for s in args.sets}
    width = max(12, *(len(label) for label, _, _ in runs))
    header = f"{'model':<{width}}{'scale':>6}" + "".join(f"{s:>20}" for s in sets)
    print("PSNR (dB) / SSIM, Y channel, border = scale, MATLAB bicubic degradation")
    print(header)
    for label, model, scale in runs:
        cells = []
        for images in sets.values():
            result = evaluate(model, images, scale, self_ensemble=args.self_ensemble,
                              chop=args.chop or False, progress=not args.no_progress)
            cells.append(f"{result.mean_psnr:.2f} / {result.mean_ssim:.4f}")
        print(f"{label:<{width}}{'x' + str(scale):>6}" + "".join(f"{c:>20}" for c in cells))
    return 0


def cmd_upscale(args) -> int:
    from PIL import Image

    from .data import load_image
    from .evaluate import upscale_image

    model = _load(args.checkpoint)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in map(Path, args.images):
        img = load_image(path)
        sr = upscale_image(model, img, chop=args.chop or False, self_ensemble=args.self_ensemble)
        target = out_dir / f"{path.stem}_x{model.scale}.png"
        # Write under a temporary name in the same folder, then rename: never a half-written PNG.
        fd, tmp = tempfile.mkstemp(suffix=".png", dir=out_dir)
        os.close(fd)
        try:
            Image.fromarray(sr).save(tmp, format="PNG")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        print(f"{path} ({img.shape[1]}x{img.shape[0]}) -> {target} ({sr.shape[1]}x{sr.shape[0]})")
    return 0


def cmd_download(args) -> int:
    return datasets.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m srlib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list the models, their scales and input conventions")

    train = sub.add_parser("train", help="train a model and save a resumable checkpoint")
    train.add_argument("model")
    train.add_argument("--scale", type=int, required=True)
    train.add_argument("--size", help="model size (default: the budget's; see `models`)")
    train.add_argument("--budget", choices=("quick", "gpu", "paper"),
                       help="default: $SRLIB_BUDGET, else gpu with CUDA, else quick")
    train.add_argument("--steps", type=int, help="optimizer steps (default: the budget's)")
    train.add_argument("--data", nargs="+", default=["embedded"],
                       help="training images: 'embedded' or set names under the data root (e.g. T91 BSD200)")
    train.add_argument("--root", help="data root (default: $SRLIB_DATA or ./data)")
    train.add_argument("--out", help="checkpoint path; an existing checkpoint is resumed")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--batch-size", type=int,
                       help="patches per step (default: the budget's); under torchrun, per process")
    train.add_argument("--patch-size", type=int, help="HR patch side (default: the budget's)")
    train.add_argument("--eval-every", type=int)
    train.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-progress", action="store_true")

    ev = sub.add_parser("evaluate", help="PSNR/SSIM of checkpoints (or bicubic) on test sets")
    ev.add_argument("models", nargs="+",
                    help="checkpoint files, reference models (names such as espcn-x3, or .safetensors files), "
                         "or 'bicubic'")
    ev.add_argument("--sets", nargs="+", default=["embedded"], help="'embedded' or set names (Set5 Set14 ...)")
    ev.add_argument("--scale", type=int, help="required for bicubic alone; checked against checkpoints")
    ev.add_argument("--root", help="data root (default: $SRLIB_DATA or ./data)")
    ev.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations ('+' models)")
    ev.add_argument("--chop", type=int, help="tile size in LR pixels for large images")
    ev.add_argument("--no-progress", action="store_true")

    up = sub.add_parser("upscale", help="apply a model to your own images, writing PNGs")
    up.add_argument("checkpoint", metavar="model",
                    help="a checkpoint file, or a reference model (a name such as espcn-x3, or a .safetensors file)")
    up.add_argument("images", nargs="+")
    up.add_argument("--out-dir", default="upscaled")
    up.add_argument("--self-ensemble", action="store_true")
    up.add_argument("--chop", type=int, help="tile size in LR pixels for large images")

    dl = sub.add_parser("download", help="download, verify and install data sets (Set5, T91, DIV2K, ...)",
                        description=datasets.DESCRIPTION)
    datasets.add_arguments(dl)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"models": cmd_models, "train": cmd_train, "evaluate": cmd_evaluate, "upscale": cmd_upscale,
                "download": cmd_download}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
