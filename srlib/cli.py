"""Command line: ``python -m srlib {models,train,evaluate,upscale,download}``.

    python -m srlib models
    python -m srlib train fsrcnn --scale 3 --steps 500 --out checkpoints/fsrcnn_x3.pt
    python -m srlib evaluate checkpoints/fsrcnn_x3.pt bicubic --sets Set5 embedded
    python -m srlib upscale checkpoints/fsrcnn_x3.pt photo.png --out-dir upscaled/
    python -m srlib upscale espcn-x3 photo.png          # a reference model, by name
    python -m srlib evaluate lapsrn-x4-authors --sets Set5 --protocol authors   # the paper's own model
    python -m srlib download Set5 T91

Training data is ``embedded`` (scikit-image photographs) or a set under the data root
(``--root`` or ``$SRLIB_DATA``). Checkpoints carry the model name, configuration, scale and
training facts, and are loaded with ``weights_only=True``. ``torchrun --nproc_per_node=N -m srlib
train ...`` trains in N processes (DistributedDataParallel, see :mod:`srlib.distributed`); rank 0
validates, prints and writes the checkpoint, and ``--batch-size`` is per process.

Mistakes are reported in one line on stderr, naming the problem and the fix, with exit code 2
for bad arguments (refused before any work starts) and 1 for failures (an unreadable file, a
diverged training run...). ``--debug`` (``python -m srlib train ... --debug``) or the
environment variable ``SRLIB_DEBUG=1`` shows the traceback instead. Nothing the user wrote is
overwritten unless asked: ``upscale`` keeps existing outputs without ``--overwrite``, and
``train`` locks its checkpoint (``<checkpoint>.lock``) against a second run.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
from pathlib import Path

from . import datasets
from .files import data_root
from .table import table

__all__ = ["main", "UsageError"]

LARGE_IMAGE_PIXELS = 1_000_000  # upscale tiles images larger than this, so that memory stays bounded
DEFAULT_TILE = 512  # LR pixels; a tile of FSRCNN x3 needs a few hundred MB


class UsageError(Exception):
    """A mistake in the command's arguments: reported in one line with exit code 2, before any work."""


def _one_line(error: BaseException) -> str:
    """An error's message on one line (some span several), or its type when it has none."""
    return " ".join(str(error).split()) or type(error).__name__


def _check_writable_folder(folder: Path, option: str) -> None:
    """Refuse a folder that is a file, or that cannot be created or written in (tried, not guessed)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:  # where the missing folders would be made
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {folder}: {existing} is a file, not a folder; choose another {option}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(f"{option} {folder}: cannot create files in {existing} ({error.strerror or error}); "
                         f"choose another {option}") from None


def _check_sets(names: list[str], root) -> None:
    """Refuse, before any work, a data set that is not installed (the loaders would say so later)."""
    for name in names:
        folder = data_root(root) / name
        if name != "embedded" and not folder.is_dir():
            raise UsageError(f"data set {name} not found in {folder.parent.resolve()}: install it with python -m srlib "
                             f"download {name} --root {folder.parent}, or point --root or SRLIB_DATA at its folder")


def _images(name: str, root, split: str):
    from .data import load_set, sample_images

    return sample_images(split) if name == "embedded" else load_set(name, root)


def _print_table(rows: list[dict], title: str | None = None) -> None:
    """Rows of column -> value, as one of srlib's tables."""
    print(table(list(rows[0]), [list(r.values()) for r in rows], title=title))


def cmd_models(args) -> int:
    from .models import list_models
    from .reference import reference_info, reference_names

    if args.authors:
        from .authors import list_authors

        print("The papers' own released models (not part of srlib: downloaded on first use; see their terms):")
        _print_table(list_authors())
        return 0
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


def _check_train_args(args) -> tuple:
    """Every argument of ``train`` checked, and defaults filled in from the budget, before any work.

    Returns the model's spec and the budget; sets ``args.size``, ``steps``, ``batch_size``,
    ``patch_size``, ``eval_every`` and ``out``."""
    from .budget import get_budget
    from .device import pick_device
    from .models import spec

    try:
        model_spec = spec(args.model)
        model_spec.check_scale(args.scale)
        budget = get_budget(args.budget)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.size is None:  # the budget's size, or the nearest this model has
        args.size = budget.model_size if budget.model_size in model_spec.sizes else (
            "paper" if budget.model_size != "quick" else next(iter(model_spec.sizes)))
    elif args.size not in model_spec.sizes:
        raise UsageError(f"{model_spec.paper_name} has no size {args.size!r}; choose one of: "
                         f"{', '.join(model_spec.sizes)} (python -m srlib models lists them)")
    args.steps = budget.steps if args.steps is None else args.steps
    args.batch_size = budget.batch_size if args.batch_size is None else args.batch_size
    args.eval_every = budget.eval_every if args.eval_every is None else args.eval_every
    patch = budget.patch_size if args.patch_size is None else args.patch_size
    if patch < args.scale:  # the network would get no LR pixel at all
        raise UsageError(f"--patch-size {patch} is smaller than the scale {args.scale}: a training patch needs at "
                         f"least one low-resolution pixel; use a multiple of {args.scale}, e.g. {budget.patch_size}")
    args.patch_size = patch - patch % args.scale  # LR patches are patch_size / scale pixels
    try:
        pick_device(args.device)
    except RuntimeError as error:  # torch's word for an unknown device, pick_device's for a missing one
        problem = "unknown device" if "Expected one of" in str(error) else _one_line(error)
        raise UsageError(f"--device {args.device}: {problem}; use cpu, cuda, cuda:N or mps, or leave --device out "
                         "for the best available") from None
    _check_sets(args.data, args.root)
    args.out = Path(args.out or f"checkpoints/{args.model}_{args.size}_x{args.scale}.pt")
    if args.out.is_dir():
        raise UsageError(f"--out {args.out} is a folder; give a checkpoint file, e.g. "
                         f"{args.out / f'{args.model}_x{args.scale}.pt'}")
    _check_writable_folder(args.out.parent, "--out")
    return model_spec, budget


def _check_resumable(out: Path, model, settings: dict, option: str = "--out") -> dict:
    """An existing ``--out`` must be a checkpoint of this model and these settings: it is continued, never replaced.
    Returns the checkpoint."""
    from .checkpoint import check_same_model, load_checkpoint
    from .train import check_same_settings

    try:
        ckpt = load_checkpoint(out)
    except ValueError as error:
        raise ValueError(f"--out {out} exists and cannot be continued ({_one_line(error)}); it is left as it is: "
                         "choose another --out") from None
    try:
        check_same_model(ckpt, model, str(out))
    except ValueError as error:
        raise UsageError(f"{error}; choose another --out, or the model, size and scale it holds") from None
    try:
        check_same_settings(ckpt.get("facts") or {}, settings, out)
    except ValueError as error:
        raise UsageError(f"{error} ({option})") from None
    return ckpt


def cmd_train(args) -> int:
    from .checkpoint import checkpoint_lock
    from .data import center_crops, sample_images
    from .device import pick_device
    from .distributed import leave, this_process
    from .evaluate import evaluate
    from .recipe import Recipe, train
    from .train import data_facts

    model_spec, budget = _check_train_args(args)
    out, steps = args.out, args.steps
    recipe = Recipe(args.model, args.size, args.scale, steps, args.batch_size, args.patch_size, args.lr, args.seed,
                    data=tuple(args.data), lr_schedule=None)
    world = this_process()  # under torchrun, one of several: rank 0 prints (fit validates and saves there)
    model = recipe.build()
    held = None  # the checkpoint continued, if any
    if world.main and out.exists():
        held = _check_resumable(out, model, dict(lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                                 processes=world.size, patch_size=args.patch_size))
    if world.main:
        out.parent.mkdir(parents=True, exist_ok=True)
    # Rank 0 writes the checkpoint; the lock keeps a second run from writing it at the same time.
    with checkpoint_lock(out) if world.main else contextlib.nullcontext():
        train_images = recipe.images(args.root)
        largest = max(min(img.shape[:2]) for img in train_images.values())
        if args.patch_size > largest:  # asked for explicitly: refused rather than shrunk as the labs' patches are
            raise UsageError(f"every training image is smaller than the patch size {args.patch_size} (the largest "
                             f"holds {largest} pixels); use --patch-size {largest - largest % args.scale} or less")
        try:
            data = recipe.dataset(train_images)
        except ValueError as error:
            raise UsageError(f"{error} (--patch-size)") from None
        if held is not None:  # the images themselves must be the ones the checkpoint was trained on
            held = _check_resumable(out, model, data_facts(data), option="--data")
        validation = center_crops(sample_images("val"), 192)  # never a test photograph

        def validate(m):
            return evaluate(m, validation, args.scale).mean_psnr

        processes = f" x {world.size} processes, {world.size * args.batch_size} patches per step" \
            if world.size > 1 else ""
        if world.main and held is not None and held["step"] < steps:  # a finished one is loaded, and says so
            print(f"resuming at step {held['step']:,} of {steps:,} ({out})")
        if world.main and (held is None or held["step"] < steps):
            print(f"training {model_spec.paper_name} ({args.size}) x{args.scale} for {steps} steps on "
                  f"{', '.join(args.data)} ({len(train_images)} images), budget {budget.name}, "
                  f"device {pick_device(args.device)}{processes}; checkpoint {out}")
        try:
            _, history = train(recipe, model=model, data=data, validate=validate, eval_every=args.eval_every,
                               checkpoint=out, checkpoint_every=budget.checkpoint_every, amp=budget.amp,
                               device=args.device, progress=not args.no_progress)
        except KeyboardInterrupt as stop:
            when = f"{stop}; " if str(stop) else ""
            if out.exists():
                raise KeyboardInterrupt(f"{when}{out} holds the run: the same command continues it") from None
            raise KeyboardInterrupt(f"{when}stopped before the first step, nothing was saved") from None
        finally:
            leave()  # the process group fit joined under torchrun
    if world.main:
        last = history.val[-1][1] if history.val else float("nan")
        trained = held is None or held["step"] < steps
        print(f"done: {len(history.steps)} steps, validation PSNR {last:.2f} dB; {'saved' if trained else 'in'} {out}")
    return 0


def _load(source: str, scale: int | None = None):
    """A model from a reference name (``espcn-x3``), an authors' model (``vdsr-authors``, at ``scale``),
    a reference weights file or a checkpoint."""
    from .authors import is_authors, load_authors
    from .checkpoint import load_model
    from .reference import is_reference, load_reference

    # A model name wins over a folder of that name; only a file of that name is a checkpoint.
    if is_authors(source) and not os.path.isfile(source):
        return load_authors(source, scale)
    if (is_reference(source) and not os.path.isfile(source)) or str(source).endswith(".safetensors"):
        return load_reference(source)
    if not os.path.exists(source) and not Path(source).suffix:  # a name, not a file: a mistyped reference?
        from .reference import RECIPES
        raise FileNotFoundError(f"{source} is neither a checkpoint file nor a reference model; reference models: "
                                f"{', '.join(RECIPES)} (python -m srlib models lists them, and python -m srlib "
                                "models --authors the papers' own)")
    return load_model(source)


def _label(source: str) -> str:
    return source if not os.path.exists(source) else Path(source).stem


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    _check_sets(args.sets, args.root)
    if args.protocol == "authors":
        return _evaluate_authors_protocol(args)
    models = {name: None if name == "bicubic" else _load(name, args.scale) for name in args.models}
    trained_scales = [m.scale for m in models.values() if m is not None]
    runs = []
    for name, model in models.items():
        # bicubic runs at --scale, else at the scale of the checkpoints it is compared with.
        scale = args.scale or (model.scale if model is not None else (trained_scales or [None])[0])
        if scale is None:
            raise UsageError("give --scale to evaluate bicubic on its own, e.g. --scale 4")
        if model is not None and args.scale and args.scale != model.scale:
            raise UsageError(f"{name} was trained for x{model.scale}, not x{args.scale}; leave --scale out or "
                             f"use --scale {model.scale}")
        label = "bicubic" if model is None else _label(name)
        runs.append((label, model, scale))
    sets = {s: _images(s, args.root, "test") for s in args.sets}
    rows = []
    for label, model, scale in runs:
        results = [evaluate(model, images, scale, self_ensemble=args.self_ensemble, chop=args.chop or False,
                            progress=not args.no_progress) for images in sets.values()]
        rows.append({"model": label, "scale": f"x{scale}", **{s: _psnr_ssim(r) for s, r in zip(sets, results)}})
    _print_table(rows, "PSNR (dB) / SSIM, Y channel, border = scale, MATLAB bicubic degradation")
    return 0


def _psnr_ssim(result) -> str:
    return f"{result.mean_psnr:.2f} / {result.mean_ssim:.4f}"


def _evaluate_authors_protocol(args) -> int:
    """``evaluate --protocol authors``: each authors' model measured by its paper's own test code."""
    from .authors import authors_model, is_authors
    from .protocols import PROTOCOLS, evaluate_protocol

    others = [name for name in args.models if not is_authors(name)]
    if others:
        raise UsageError(f"--protocol authors applies to the papers' own models (python -m srlib models --authors), "
                         f"not to {', '.join(others)}; leave --protocol out for them")
    if args.self_ensemble or args.chop:
        raise UsageError("--protocol authors runs each paper's test code as it was: without --self-ensemble or --chop")
    models = {name: _load(name, args.scale) for name in args.models}
    sets = {s: _images(s, args.root, "test") for s in args.sets}
    rows = []
    for name, model in models.items():
        protocol = authors_model(name).protocol
        rows.append({"model": name, "scale": f"x{model.scale}", "protocol": protocol,
                     **{s: _psnr_ssim(evaluate_protocol(model, images, model.scale, protocol))
                        for s, images in sets.items()}})
    _print_table(rows, "PSNR (dB) / SSIM, each paper's own evaluation protocol")
    print("protocols: " + "; ".join(f"{p.name}: {p.description}" for p in PROTOCOLS.values() if p.name != "book"))
    return 0


def _output_names(images: list[Path], out_dir: Path, scale: int) -> dict[Path, Path]:
    """Input -> output file, ``<stem>_x<scale>.png``; inputs sharing a name get ``<stem>-2_x<scale>.png``..."""
    targets, taken = {}, set()
    for path in images:
        stem, n = path.stem, 1
        while (name := f"{stem}{f'-{n}' if n > 1 else ''}_x{scale}.png").lower() in taken:  # case-blind disks too
            n += 1
        if n > 1:
            print(f"note: {path} has the same name as an earlier input; writing it as {name}")
        taken.add(name.lower())
        targets[path] = out_dir / name
    return targets


def _save_png(image, target: Path) -> None:
    """Write under a temporary name in the same folder, then rename: never a half-written PNG."""
    from PIL import Image

    from .files import write_atomically

    write_atomically(target, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def cmd_upscale(args) -> int:
    from .data import load_image
    from .inference import upscale_tiled

    images = [Path(p) for p in args.images]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no image file at {', '.join(missing)}; check the path")
    out_dir = Path(args.out_dir)
    _check_writable_folder(out_dir, "--out-dir")
    model = _load(args.checkpoint, args.scale)
    if args.scale and args.scale != model.scale:
        raise UsageError(f"{args.checkpoint} was trained for x{model.scale}, not x{args.scale}; leave --scale out")
    targets = _output_names(images, out_dir, model.scale)
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                         "give --overwrite to replace, or choose another --out-dir")
    inputs = {p.resolve() for p in images}
    if any(t.resolve() in inputs for t in targets.values()):
        raise UsageError("an output would replace one of the input images; choose another --out-dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for path, target in targets.items():
        try:
            img = load_image(path)
            large = img.shape[0] * img.shape[1] > LARGE_IMAGE_PIXELS
            tile = args.chop or (DEFAULT_TILE if large else max(img.shape[:2]))  # one tile: the whole image
            sr = upscale_tiled(model, img, tile=tile, self_ensemble=args.self_ensemble)
            _save_png(sr, target)
        except (OSError, ValueError, RuntimeError, MemoryError) as error:  # the next image may be fine
            if args.debug:
                raise
            failed.append(str(path))
            message = _one_line(error)
            print(f"failed: {message if str(path) in message else f'{path}: {message}'}", file=sys.stderr)
            continue
        print(f"{path} ({img.shape[1]}x{img.shape[0]}) -> {target} ({sr.shape[1]}x{sr.shape[0]})")
    if failed:
        print(f"error: {len(failed)} of {len(images)} images could not be upscaled ({', '.join(failed)}); "
              "see the messages above", file=sys.stderr)
        return 1
    return 0


def cmd_download(args) -> int:
    return datasets.run(args)


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints reported like every other mistake: one line, exit code 2."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _whole(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number within bounds."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value
    return parse


def _positive(text: str) -> float:
    """An argparse type: a finite number above zero (float() also accepts 'nan' and 'inf')."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    debug = _Parser(add_help=False)  # --debug before or after the command; SUPPRESS: unset unless given
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error (also: environment variable SRLIB_DEBUG=1)")
    parser = _Parser(prog="python -m srlib", description=__doc__.split("\n\n")[0], parents=[debug])
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the models, their scales and input conventions", parents=[debug])
    models.add_argument("--authors", action="store_true",
                        help="list the papers' own released models instead (name, paper, source, terms, Set5)")

    train = sub.add_parser("train", help="train a model and save a resumable checkpoint", parents=[debug])
    train.add_argument("model")
    train.add_argument("--scale", type=int, required=True)
    train.add_argument("--size", help="model size (default: the budget's; see `models`)")
    train.add_argument("--budget", choices=("quick", "gpu", "paper"),
                       help="default: $SRLIB_BUDGET, else gpu with CUDA, else quick")
    train.add_argument("--steps", type=_whole(1), help="optimizer steps (default: the budget's)")
    train.add_argument("--data", nargs="+", default=["embedded"],
                       help="training images: 'embedded' or set names under the data root (e.g. T91 BSD200)")
    train.add_argument("--root", help="data root (default: $SRLIB_DATA or ./data)")
    train.add_argument("--out", help="checkpoint path; an existing checkpoint is resumed")
    train.add_argument("--lr", type=_positive, default=1e-3)
    train.add_argument("--batch-size", type=_whole(1),
                       help="patches per step (default: the budget's); under torchrun, per process")
    train.add_argument("--patch-size", type=_whole(1), help="HR patch side (default: the budget's)")
    train.add_argument("--eval-every", type=_whole(1))
    train.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    train.add_argument("--seed", type=_whole(0, 2**32 - 1), default=0)
    train.add_argument("--no-progress", action="store_true")

    ev = sub.add_parser("evaluate", help="PSNR/SSIM of checkpoints (or bicubic) on test sets", parents=[debug])
    ev.add_argument("models", nargs="+",
                    help="checkpoint files, reference models (names such as espcn-x3, or .safetensors files), "
                         "the papers' own models (names such as vdsr-authors) or 'bicubic'")
    ev.add_argument("--sets", nargs="+", default=["embedded"], help="'embedded' or set names (Set5 Set14 ...)")
    ev.add_argument("--scale", type=_whole(1), help="required for bicubic alone; checked against checkpoints")
    ev.add_argument("--root", help="data root (default: $SRLIB_DATA or ./data)")
    ev.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations ('+' models)")
    ev.add_argument("--chop", type=_whole(8), help="tile size in LR pixels for large images")
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--protocol", choices=("book", "authors"), default="book",
                    help="book (default): the book's protocol for every model; authors: each paper's own test "
                         "code, for the papers' released models (python -m srlib models --authors)")

    up = sub.add_parser("upscale", help="apply a model to your own images, writing PNGs", parents=[debug])
    up.add_argument("checkpoint", metavar="model",
                    help="a checkpoint file, a reference model (a name such as espcn-x3, or a .safetensors file), "
                         "or one of the papers' own models (fsrcnn-x3-authors; python -m srlib models --authors)")
    up.add_argument("images", nargs="+")
    up.add_argument("--out-dir", default="upscaled")
    up.add_argument("--scale", type=_whole(2), help="the scale, for a model that serves several (vdsr-authors)")
    up.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")
    up.add_argument("--self-ensemble", action="store_true")
    up.add_argument("--chop", type=_whole(8),
                    help=f"tile size in LR pixels (default: {DEFAULT_TILE} for images over "
                         f"{LARGE_IMAGE_PIXELS:,} pixels, else the whole image)")

    dl = sub.add_parser("download", help="download, verify and install data sets (Set5, T91, DIV2K, ...)",
                        description=datasets.cli.DESCRIPTION, parents=[debug])
    datasets.add_arguments(dl)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; return its exit code: 0 done, 1 failed, 2 bad arguments, 130 interrupted."""
    commands = {"models": cmd_models, "train": cmd_train, "evaluate": cmd_evaluate, "upscale": cmd_upscale,
                "download": cmd_download}
    debug = os.environ.get("SRLIB_DEBUG", "").strip() not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        args.debug = debug = debug or getattr(args, "debug", False)
        return commands[args.command](args)
    except KeyboardInterrupt as stop:
        if debug:
            raise
        print(f"interrupted{': ' + _one_line(stop) if str(stop) else ''}", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        # A path that does not exist is a bad argument, like an unknown option; anything else is a
        # failure. An error this code did not expect is named by its type.
        expected = isinstance(error, (UsageError, OSError, ValueError, FloatingPointError, datasets.DownloadError))
        hint = "" if expected else f" ({type(error).__name__}; --debug shows where)"
        print(f"error: {_one_line(error)}{hint}", file=sys.stderr)
        return 2 if isinstance(error, (UsageError, FileNotFoundError)) else 1
