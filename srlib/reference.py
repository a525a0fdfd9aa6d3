"""Reference models: networks trained once on the 291-image set and shipped with srlib.

A minute of CPU training shows that a network learns; it does not show what the network can
do. Every lab therefore also loads a *reference model*: the same architecture trained for a
fixed, recorded budget on T91 + BSD200 (the "291 images" of VDSR and later papers), on a 2-core
CPU. The weights live in ``srlib/weights/`` as half-precision safetensors files (no pickle,
nothing executed when loading; integer buffers such as DRCN's step counter stay integers, though
the files written before that rule hold them as exact float16 values, which load as well), each
with a JSON file beside it that records how it was made and what it measured on Set5 and on the
embedded held-out photographs when it was saved::

    model = load_reference("espcn-x3")          # float32, eval mode, checksum verified
    python -m srlib upscale espcn-x3 photo.png  # the same from the command line

``python scripts/train_reference.py NAME --overwrite`` retrains one (see :data:`RECIPES`); the
recorded numbers are re-measured by the tests, so a change to the protocol, the loader or a
model that moves any of them by 0.01 dB fails. Nothing shipped is replaced without
``--overwrite``, and ``--remeasure`` refuses to run without every set it would rewrite.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .files import write_atomically, write_json
from .recipe import Recipe, train
from .table import table

__all__ = ["Recipe", "RECIPES", "WEIGHTS_DIR", "RECORD_TOLERANCE_DB", "reference_names", "reference_info",
           "half_precision", "load_reference", "train_reference", "measure_reference", "recorded_result", "remeasure",
           "is_reference", "TrainingCost", "training_costs", "training_cost_table"]

WEIGHTS_DIR = Path(__file__).parent / "weights"
RECORD_TOLERANCE_DB = 0.01  # how far a re-measured PSNR may move from the recorded one
LR_SEARCH_FILE = WEIGHTS_DIR / "lr_search.json"  # the rate searches of the longer runs (benchmarks/lr_search.py)
PROVENANCE_KEYS = ("model", "config", "scale", "sha256", "measured")  # what loading and the labs read


# Each reference is trained with Adam and a cosine-decayed rate, seed 0, on T91 + BSD200 (the
# Recipe's defaults), on patches of the model's channels (Y, or RGB for EDSR, MDSR and DRN). The
# steps were chosen from measured step times: 7 to 40 minutes of CPU for the x3 models, and the
# same six minutes of one thread for every x4 model (the equal-compute ranking).
RECIPES: dict[str, Recipe] = {
    # SRCNN's 33x33 sub-images; the two variants get the same steps, so they can be compared.
    "srcnn-x3": Recipe("srcnn", "9-5-5", 3, steps=15_000, batch_size=32, patch_size=33, lr=1e-3),
    "srcnn-9-1-5-x3": Recipe("srcnn", "9-1-5", 3, steps=15_000, batch_size=32, patch_size=33, lr=1e-3),
    # FSRCNN and ESPCN work in LR space and cost about a quarter of SRCNN per step.
    "fsrcnn-x3": Recipe("fsrcnn", "paper", 3, steps=45_000, batch_size=32, patch_size=48, lr=2e-3),
    "espcn-x3": Recipe("espcn", "paper", 3, steps=30_000, batch_size=32, patch_size=51, lr=2e-3),
    # The deep networks run on the bicubic-upsampled image: every layer works on 9 times the
    # pixels of an LR-space layer. At the papers' widths one step of 16 41x41 patches takes 1.4 s
    # (VDSR) to 5 s (DRRN B1U9) on one core, so the references keep the papers' depth and
    # recursions with 32 filters, and train for about 25 minutes on one core each.
    "vdsr-x3": Recipe("vdsr", "narrow", 3, steps=4_000, batch_size=16, patch_size=41, lr=1e-3),
    "drrn-x3": Recipe("drrn", "B1U9-narrow", 3, steps=3_500, batch_size=16, patch_size=41, lr=1e-3),
    "drcn-x3": Recipe("drcn", "narrow", 3, steps=1_600, batch_size=16, patch_size=41, lr=5e-4),
    # x4, the scale all nine papers report: every model gets the same six minutes of one CPU
    # thread, on the same data and the same 48x48 HR patches, 16 per step. The steps are six
    # minutes divided by each model's step time as measured by benchmarks/equal_compute.py, so
    # these references are also the book's equal-compute ranking. Rates: the x3 references'
    # for the earlier networks, 5e-4 for the EDSR family and DRN (their papers use 1e-4 over
    # hundreds of thousands of steps).
    "srcnn-x4": Recipe("srcnn", "9-5-5", 4, steps=1_800, batch_size=16, patch_size=48, lr=1e-3),
    "fsrcnn-x4": Recipe("fsrcnn", "paper", 4, steps=19_000, batch_size=16, patch_size=48, lr=2e-3),
    "espcn-x4": Recipe("espcn", "paper", 4, steps=30_000, batch_size=16, patch_size=48, lr=2e-3),
    "vdsr-x4": Recipe("vdsr", "narrow", 4, steps=620, batch_size=16, patch_size=48, lr=1e-3),
    "drcn-x4": Recipe("drcn", "narrow", 4, steps=280, batch_size=16, patch_size=48, lr=5e-4),
    "drrn-x4": Recipe("drrn", "B1U9-narrow", 4, steps=610, batch_size=16, patch_size=48, lr=1e-3),
    "lapsrn-x4": Recipe("lapsrn", "paper", 4, steps=880, batch_size=16, patch_size=48, lr=1e-3),
    "edsr-x4": Recipe("edsr", "baseline", 4, steps=980, batch_size=16, patch_size=48, lr=5e-4),
    "mdsr-x4": Recipe("mdsr", "baseline", 4, steps=500, batch_size=16, patch_size=48, lr=5e-4, scales=(2, 3, 4)),
    "drn-x4": Recipe("drn", "small", 4, steps=590, batch_size=16, patch_size=48, lr=5e-4),
}


def lr_search_results() -> dict:
    """The recorded rate searches, by the six-minute reference they started from."""
    return json.loads(LR_SEARCH_FILE.read_text()) if LR_SEARCH_FILE.is_file() else {}


def reference_names() -> list[str]:
    """Names of the reference models shipped with this srlib (their weights are present)."""
    return [name for name in RECIPES if (WEIGHTS_DIR / f"{name}.safetensors").is_file()]


def is_reference(name: str) -> bool:
    """Whether ``name`` names a reference model (e.g. ``"espcn-x3"``), shipped or not."""
    return str(name).lower() in RECIPES


def _paths(name: str | os.PathLike) -> tuple[Path, Path]:
    """The weights and provenance files of a reference name, or of a ``.safetensors`` path."""
    if str(name).endswith(".safetensors"):
        weights = Path(name)
        return weights, weights.with_suffix(".json")
    key = str(name).lower()
    if key not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; choose one of: {', '.join(RECIPES)}")
    return WEIGHTS_DIR / f"{key}.safetensors", WEIGHTS_DIR / f"{key}.json"


def reference_info(name: str | os.PathLike) -> dict:
    """The provenance and measurements recorded beside reference model ``name`` (or weights file)."""
    weights, info = _paths(name)
    if not weights.is_file():
        fix = (f"train it with: python scripts/train_reference.py {name}" if is_reference(name)
               else "check the path")
        raise FileNotFoundError(f"no reference weights at {weights}; {fix}")
    if not info.is_file():
        raise FileNotFoundError(f"{weights.name} has no provenance file {info.name} beside it; "
                                f"keep the two files together")
    try:
        recorded = json.loads(info.read_text())
    except ValueError as error:
        raise ValueError(f"{info} is not valid JSON ({error}); restore it from the repository") from None
    missing = [k for k in PROVENANCE_KEYS if k not in recorded] if isinstance(recorded, dict) else list(PROVENANCE_KEYS)
    if missing:
        raise ValueError(f"{info} lacks {', '.join(missing)}: an incomplete or altered provenance file; "
                         "restore it from the repository")
    _check_labels(name, recorded, info)
    return recorded


def _check_labels(name: str | os.PathLike, info: dict, path: Path) -> None:
    """Refuse provenance whose model or scale contradicts itself or, for a shipped name, its recipe
    (weights of a scale-free network such as VDSR would load under any label)."""
    if not isinstance(info["config"], dict):
        raise ValueError(f"{path}: config is not a mapping of the model's arguments: the file was altered; "
                         "restore it from the repository")
    config_scale = info["config"].get("scale")
    recipe = RECIPES.get(str(name).lower()) if not str(name).endswith(".safetensors") else None
    facts = {"scale": [info["scale"], config_scale] + ([recipe.scale] if recipe else []),
             "model": [info["model"]] + ([recipe.model] if recipe else [])}
    for what, values in facts.items():
        if len({v for v in values if v is not None}) > 1:
            raise ValueError(f"{path} gives conflicting {what}s ({', '.join(map(str, values))}): the file was altered; "
                             "restore it from the repository")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_reference(name: str | os.PathLike, device: str | torch.device = "cpu",
                   scale: int | None = None) -> torch.nn.Module:
    """Reference model ``name`` (or a ``.safetensors`` file with its ``.json`` beside it) in float32
    and eval mode, after checking the file's sha256 against the one recorded. The papers' own
    models load by their names too (``srcnn-x3-authors``; ``scale`` for ``vdsr-authors``), see
    :mod:`srlib.authors`."""
    from safetensors.torch import load_file

    from .authors import is_authors, load_authors
    from .models import rebuild

    if is_authors(name):
        return load_authors(name, scale, device=device)

    weights, _ = _paths(name)
    info = reference_info(name)
    if _sha256(weights) != info["sha256"]:
        raise ValueError(f"{weights.name} does not match the checksum recorded in {weights.stem}.json: "
                         f"the file is damaged or was replaced; restore it from the repository")
    try:
        model = rebuild(info["model"], info["config"])
    except (ValueError, TypeError) as error:  # an unknown model, or arguments it does not take
        raise ValueError(f"{weights.stem}.json describes a model this srlib cannot build ({error}); restore it "
                         "from the repository") from None
    try:
        stored = load_file(weights)
    except Exception as error:  # safetensors' own error type: a file that is not safetensors at all
        raise ValueError(f"{weights.name} could not be read as safetensors ({' '.join(str(error).split())}); "
                         "restore it from the repository") from None
    try:
        model.load_state_dict(_full_precision(stored, model.state_dict(), weights.name))
    except RuntimeError as error:  # weights that do not fit the described model
        first = (str(error).splitlines()[1:] or [str(error)])[0].strip()
        raise ValueError(f"{weights.name} does not fit the model its {weights.stem}.json describes ({first}); "
                         "restore both files from the repository") from None
    model.srlib_reference = info
    return model.eval().to(device)


def half_precision(state: dict) -> dict:
    """What a reference file stores: floating tensors in half precision, integer buffers as they are
    (float16 holds integers exactly only up to 2048, and turns 65520 and above into infinity)."""
    return {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous() for k, v in state.items()}


def _full_precision(stored: dict, model_state: dict, where: str) -> dict:
    """The stored tensors as the model holds them: floating ones in float32, integer ones as integers.
    An integer buffer stored as float16 (files written before :func:`half_precision`) must be an exact
    whole number."""
    state = {}
    for key, tensor in stored.items():
        target = model_state.get(key)
        if target is not None and not target.is_floating_point() and tensor.is_floating_point():
            if not torch.all(torch.isfinite(tensor) & (tensor == tensor.round())):
                raise ValueError(f"{where}: the integer buffer {key} holds {tensor.flatten()[:3].tolist()}, not "
                                 "whole numbers: the file is damaged; restore it from the repository")
            tensor = tensor.to(target.dtype)
        state[key] = tensor.float() if tensor.is_floating_point() else tensor
    return state


def measure_reference(model: torch.nn.Module, root=None) -> dict:
    """Set5 (if the data root has it) and embedded held-out PSNR/SSIM of a model, rounded as recorded."""
    from .data import data_root, load_set, sample_images
    from .evaluate import evaluate

    scale = int(model.scale)
    sets = {"embedded": sample_images("test")}
    if (data_root(root) / "Set5").is_dir():
        sets["Set5"] = load_set("Set5", root)
    measured = {}
    for set_name, images in sets.items():
        result = evaluate(model, images, scale)
        per_image = zip(result.names, result.psnr, result.ssim, result.bicubic_psnr, result.bicubic_ssim)
        # Six decimals: printing a figure rounded twice (to 5, then 4 digits) could differ from printing it once.
        measured[set_name] = dict(psnr=round(result.mean_psnr, 6), ssim=round(result.mean_ssim, 6),
                                  bicubic_psnr=round(result.mean_bicubic_psnr, 6),
                                  bicubic_ssim=round(result.mean_bicubic_ssim, 6),
                                  per_image={k: dict(psnr=round(p, 6), ssim=round(s, 6), bicubic_psnr=round(bp, 6),
                                                     bicubic_ssim=round(bs, 6)) for k, p, s, bp, bs in per_image})
    return measured


def recorded_result(name: str, set_name: str = "Set5", label: str | None = None, root=None):
    """The figures recorded for reference model ``name`` on ``set_name``, as an :class:`EvalResult`.

    Set5 is not bundled with srlib: a reader without it still sees the table that was measured
    when the model was saved. Where the data root holds the set, the model is measured again
    first, and a mean PSNR that moved by :data:`RECORD_TOLERANCE_DB` or more is an error: the
    printed table is then always one that holds on this machine."""
    from .data import data_root, load_set
    from .evaluate import EvalResult, evaluate

    info = reference_info(name)
    if set_name not in info["measured"]:
        raise ValueError(f"no figures recorded for {name} on {set_name}; recorded: {', '.join(info['measured'])}")
    recorded = info["measured"][set_name]
    if set_name != "embedded" and (data_root(root) / set_name).is_dir():
        now = evaluate(load_reference(name), load_set(set_name, root), info["scale"]).mean_psnr
        if abs(now - recorded["psnr"]) >= RECORD_TOLERANCE_DB:
            raise ValueError(f"{name} measures {now:.4f} dB on {set_name}, but {recorded['psnr']:.4f} dB was recorded "
                             "with its weights: the evaluation, the data or the model code changed; find out why, or "
                             f"record the new figures with python scripts/train_reference.py {name} --remeasure")
    rows = recorded["per_image"]
    return EvalResult(label=label or name, scale=info["scale"], names=list(rows),
                      psnr=[r["psnr"] for r in rows.values()], ssim=[r["ssim"] for r in rows.values()],
                      bicubic_psnr=[r["bicubic_psnr"] for r in rows.values()],
                      bicubic_ssim=[r["bicubic_ssim"] for r in rows.values()])


@dataclass(frozen=True)
class TrainingCost:
    """What a reference model reached on Set5, and what it cost to run and to train."""

    name: str
    set5_psnr: float
    set5_gain: float  # over bicubic, dB
    parameters: int
    macs_per_pixel: float  # multiply-accumulates per output pixel
    patches: int  # training patches seen: steps x batch size
    training_pixels: int  # HR pixels in those patches
    minutes: float
    threads: int


def training_costs(names: list[str], output_size: int = 255) -> dict[str, TrainingCost]:
    """:class:`TrainingCost` of each reference model, from its recorded provenance and exact counts.

    MACs are counted for an output of about ``output_size`` pixels square (a multiple of the
    scale), so that LR-space and upsampled-input models are compared on the same output. Every
    figure is recorded or counted, none is timed: the same on every machine."""
    from .models import count_parameters
    from .profile import count_macs

    costs = {}
    for name in names:
        model = load_reference(name)
        info, recipe = model.srlib_reference, model.srlib_reference["recipe"]
        out = output_size // model.scale * model.scale
        side = out if model.input_kind == "upsampled" else out // model.scale
        set5 = info["measured"]["Set5"]
        patches = recipe["steps"] * recipe["batch_size"]
        costs[name] = TrainingCost(
            name=name, set5_psnr=set5["psnr"], set5_gain=set5["psnr"] - set5["bicubic_psnr"],
            parameters=count_parameters(model),
            macs_per_pixel=count_macs(model, (1, model.in_channels, side, side)) / out**2,
            patches=patches, training_pixels=patches * recipe["patch_size"] ** 2,
            minutes=info["seconds"] / 60, threads=info["threads"])
    return costs


def training_cost_table(costs: dict[str, TrainingCost]) -> str:
    """:func:`training_costs` as a text table."""
    header = ["reference", "Set5", "gain", "params", "MACs/pixel", "patches seen", "HR Mpixels", "minutes", "threads"]
    rows = [[c.name, c.set5_psnr, c.set5_gain, c.parameters, c.macs_per_pixel, c.patches, c.training_pixels / 1e6,
             c.minutes, c.threads] for c in costs.values()]
    return table(header, rows, ["", ".2f", "+.2f", ",", ",.0f", ",", ",.0f", ".0f"])


def remeasure(name: str, root=None) -> dict:
    """Measure a shipped reference model again and rewrite the figures in its JSON (weights untouched).

    For a change of the evaluation protocol that is *meant* to move the figures. Every set
    recorded must be in the data root: otherwise nothing is written, since measuring without it
    would drop its figures."""
    from .data import data_root

    _, info_path = _paths(name)
    info = reference_info(name)
    missing = [s for s in info["measured"] if s != "embedded" and not (data_root(root) / s).is_dir()]
    if missing:
        raise FileNotFoundError(f"cannot re-measure {name}: {', '.join(missing)} not found in "
                                f"{data_root(root).resolve()}, so its recorded figures would be lost; they are kept. "
                                "Point --root or SRLIB_DATA at a data root that holds "
                                f"{', '.join(missing)} (python -m srlib download {' '.join(missing)})")
    info["measured"] = measure_reference(load_reference(name), root)
    write_json(info_path, info)
    return info


def source_commit() -> str:
    """The commit of this srlib checkout, marked when it has uncommitted changes; "unknown" outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).parent)
        # Weights written by earlier trainings (this folder's own output) do not change the code a run uses.
        status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(exclude)weights"]
        dirty = subprocess.run(status, capture_output=True, text=True, timeout=10,
                               cwd=Path(__file__).parent).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "") if out.returncode == 0 \
            else "unknown"
    except OSError:
        return "unknown"


def train_reference(name: str, root=None, checkpoint_dir: str | os.PathLike = "checkpoints/reference",
                    out_dir: str | os.PathLike | None = None, progress: bool = True, seed: int | None = None,
                    overwrite: bool = False) -> dict:
    """Train reference model ``name`` by its recipe, save its half-precision weights and provenance.

    Training checkpoints go to ``checkpoint_dir`` (an interrupted run resumes there); the
    weights and JSON go to ``out_dir`` (default: srlib's own ``weights`` folder). ``seed``
    replaces the recipe's seed (initial weights and patches), to measure how much a recipe's
    result depends on it; such a run must go to another ``out_dir``. Weights already in
    ``out_dir`` are replaced only with ``overwrite=True`` (refused before any training). Returns
    the recorded information.
    """
    from safetensors.torch import save_file

    from .data import center_crops, sample_images
    from .evaluate import evaluate
    from .models import spec

    _paths(name)  # an unknown name is refused before any work
    name = str(name).lower()
    recipe = RECIPES[name] if seed is None else replace(RECIPES[name], seed=seed)
    if seed is not None and seed != RECIPES[name].seed and (out_dir is None or Path(out_dir).resolve() == WEIGHTS_DIR):
        raise ValueError(f"a run of {name} with seed {seed} is not the reference: give it another out_dir")
    out = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # found now, not after the training
        raise FileExistsError(f"--out-dir {out}: {blocker} is a file, not a folder; choose another --out-dir")
    if (out / f"{name}.safetensors").exists() and not overwrite:
        raise FileExistsError(f"{out / f'{name}.safetensors'} exists already; give --overwrite (overwrite=True) to "
                              "replace it and its provenance, or --out-dir for another folder")
    commit = source_commit()  # the code this run starts from (the repository may move on while it trains)
    model_spec = spec(recipe.model)
    images = recipe.images(root)
    validation = center_crops(sample_images("val"), 256)
    run = name if seed is None else f"{name}-seed{seed}"
    checkpoint = Path(checkpoint_dir) / f"{run}.pt"
    try:
        model, history = train(recipe, data=recipe.dataset(images), device="cpu", progress=progress,
                               validate=lambda m: evaluate(m, validation, recipe.scale).mean_psnr,
                               eval_every=max(1, recipe.steps // 20), checkpoint=checkpoint, desc=run)
    except ValueError as error:  # e.g. the recipe changed since that checkpoint was written
        if not checkpoint.exists():
            raise
        raise ValueError(f"{error} (here: move {checkpoint} away to train the recipe afresh)") from None

    # What is shipped is the half-precision weights; everything is measured on them.
    state = half_precision(model.state_dict())
    model.load_state_dict(_full_precision(state, model.state_dict(), name))
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    write_atomically(weights, lambda tmp: save_file(state, tmp, metadata={"model": recipe.model}))
    info = dict(
        name=name, model=recipe.model, paper=model_spec.paper_name, config=model.srlib_config,
        scale=recipe.scale, recipe=recipe.record(), schedule=recipe.schedule,
        data=" + ".join(recipe.data) + f" ({len(images)} images, bicubic LR"
             + (f" at x{', x'.join(map(str, recipe.scales))}, one scale per batch" if recipe.scales else "")
             + f", {'Y channel' if model_spec.channels == 1 else 'RGB'}, 8 flips and rotations)",
        loss=f"srlib.models.{recipe.model}.loss: " + (model_spec.loss.__doc__ or "").strip().splitlines()[0],
        seconds=round(history.seconds), threads=torch.get_num_threads(), torch_version=torch.__version__,
        commit=commit,
        command=f"python scripts/train_reference.py {name}" + (f" --seed {seed}" if seed is not None else ""),
        saved=time.strftime("%Y-%m-%d", time.gmtime()), dtype="float16", sha256=_sha256(weights),
        validation=[[step, round(psnr, 4)] for step, psnr in history.val],
        measured=measure_reference(model, root),
    )
    write_json(out / f"{name}.json", info)
    return info

