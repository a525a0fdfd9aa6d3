"""How far can the labs' training claims be trusted? Each claim, over several seeds.

    python benchmarks/calibrate.py                  # every lab, seeds 0-4
    python benchmarks/calibrate.py srcnn --seeds 8

A lab trains for a minute with seed 0 and draws a conclusion ("9-5-5 beats 9-1-5 by 0.3 dB").
One seed is an anecdote: this script runs each lab's claim experiment exactly as the lab does
at the quick budget (same data, network, optimiser, steps; only the seed changes: initial
weights, patches and their order) and prints, per measured quantity, the mean, the standard
deviation and the range over the seeds. The labs quote these figures and assert their own
claim with a margin the spread justifies. Results are also written to
``benchmarks/results/calibration.json``.

About 15 minutes on an idle 2-core CPU for all three labs and 5 seeds.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if importlib.util.find_spec("srlib") is None:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srlib.data import PatchDataset, sample_images  # noqa: E402
from srlib.device import seed_everything  # noqa: E402
from srlib.evaluate import evaluate  # noqa: E402
from srlib.files import write_atomically  # noqa: E402
from srlib.models import build, spec  # noqa: E402
from srlib.models.fsrcnn import replace_deconvolution  # noqa: E402
from srlib.train import fit  # noqa: E402

SCALE = 3
RESULTS = Path(__file__).parent / "results" / "calibration.json"


def _train(name: str, size: str, data: PatchDataset, seed: int, **fit_kwargs) -> torch.nn.Module:
    """Seed, build and train one network as the labs do (seeded before building: same initial weights)."""
    seed_everything(seed)
    model = build(name, SCALE, size=size, **fit_kwargs.pop("build", {}))
    fit(model, data, loss_fn=spec(name).loss, seed=seed, progress=False, device="cpu", **fit_kwargs)
    return model


def srcnn(seed: int, train: dict, test: dict) -> dict:
    """SRCNN lab: 9-5-5 and 9-1-5, 1,600 steps of 8 33x33 patches, Adam 1e-3 with a cosine decay."""
    data = PatchDataset(train, SCALE, patch_size=33, channels="y", upsampled=True, seed=seed)
    kwargs = dict(steps=1_600, batch_size=8, lr=1e-3, lr_schedule="cosine")
    wide = evaluate(_train("srcnn", "9-5-5", data, seed, **kwargs), test, SCALE)
    narrow = evaluate(_train("srcnn", "9-1-5", data, seed, **kwargs), test, SCALE)
    return {"9-5-5 gain over bicubic (dB)": wide.gain, "9-1-5 gain over bicubic (dB)": narrow.gain,
            "9-5-5 minus 9-1-5 (dB)": wide.mean_psnr - narrow.mean_psnr}


def fsrcnn(seed: int, train: dict, test: dict, srcnn_steps: int) -> dict:
    """FSRCNN lab: 1,500 steps of 16 48x48 patches at 5e-3; SRCNN 9-5-5 for the same CPU time;
    then the x3 network moved to x2 by fine-tuning its deconvolution alone for 300 steps."""
    data = PatchDataset(train, SCALE, patch_size=48, channels="y", seed=seed)
    model = _train("fsrcnn", "paper", data, seed, steps=1_500, batch_size=16, lr=5e-3, lr_schedule="cosine")
    result = evaluate(model, test, SCALE)
    srcnn_data = PatchDataset(train, SCALE, patch_size=48, channels="y", upsampled=True, seed=seed)
    srcnn_model = _train("srcnn", "paper", srcnn_data, seed, steps=srcnn_steps, batch_size=16, lr=1e-3,
                         lr_schedule="cosine")
    model_x2 = replace_deconvolution(copy.deepcopy(model), 2)
    data_x2 = PatchDataset(train, 2, patch_size=48, channels="y", seed=seed)
    seed_everything(seed)
    fit(model_x2, data_x2, steps=300, lr=1e-2, lr_schedule="cosine", batch_size=16, seed=seed, progress=False,
        device="cpu")
    return {"FSRCNN gain over bicubic (dB)": result.gain,
            "FSRCNN minus SRCNN at equal time (dB)": result.mean_psnr - evaluate(srcnn_model, test, SCALE).mean_psnr,
            "x2 transfer gain over bicubic (dB)": evaluate(model_x2, test, 2).gain}


def espcn(seed: int, train: dict, test: dict) -> dict:
    """ESPCN lab: ESPCN and its HR-space twin, 1,000 steps of 16 48x48 patches, Adam 3e-3, cosine."""
    kwargs = dict(steps=1_000, batch_size=16, lr=3e-3, lr_schedule="cosine")
    data = PatchDataset(train, SCALE, patch_size=48, channels="y", seed=seed)
    twin_data = PatchDataset(train, SCALE, patch_size=48, channels="y", upsampled=True, seed=seed)
    lr_space = evaluate(_train("espcn", "paper", data, seed, **kwargs), test, SCALE)
    twin = evaluate(_train("espcn", "paper", twin_data, seed, build=dict(space="hr"), **kwargs), test, SCALE,
                    upsampled=True, channels="y")
    return {"ESPCN gain over bicubic (dB)": lr_space.gain, "HR twin gain over bicubic (dB)": twin.gain,
            "ESPCN minus HR twin (dB)": lr_space.mean_psnr - twin.mean_psnr}


def _equal_time_steps(train: dict) -> int:
    """SRCNN steps that take as long as FSRCNN's 1,500 on this machine (as the FSRCNN lab measures)."""
    per_step = {}
    for name, upsampled in (("fsrcnn", False), ("srcnn", True)):
        data = PatchDataset(train, SCALE, patch_size=48, channels="y", upsampled=upsampled)
        model = build(name, SCALE)
        fit(model, data, steps=2, batch_size=16, progress=False, device="cpu")
        start = time.perf_counter()
        fit(model, data, steps=10, batch_size=16, progress=False, device="cpu")
        per_step[name] = (time.perf_counter() - start) / 10
    return max(1, round(1_500 * per_step["fsrcnn"] / per_step["srcnn"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", choices=[[], "srcnn", "fsrcnn", "espcn"], metavar="LAB",
                        help="srcnn, fsrcnn or espcn (default: all three)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    args = parser.parse_args()
    args.labs = args.labs or ["srcnn", "fsrcnn", "espcn"]
    train, test = sample_images("train"), sample_images("test")
    extra = {}
    if "fsrcnn" in args.labs:
        extra["fsrcnn"] = dict(srcnn_steps=_equal_time_steps(train))
        print(f"FSRCNN lab: SRCNN gets {extra['fsrcnn']['srcnn_steps']} steps for FSRCNN's 1,500 on this CPU")
    experiments = {"srcnn": srcnn, "fsrcnn": fsrcnn, "espcn": espcn}
    report = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for lab in args.labs:
        runs = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            runs.append(experiments[lab](seed, train, test, **extra.get(lab, {})))
            print(f"{lab} seed {seed}: " + ", ".join(f"{k} {v:+.3f}" for k, v in runs[-1].items())
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
        summary = {}
        print(f"\n{lab}: {args.seeds} seeds (quick budget, embedded photographs, held-out test photographs)")
        for key in runs[0]:
            values = [run[key] for run in runs]
            summary[key] = dict(mean=round(statistics.mean(values), 4), sd=round(statistics.stdev(values), 4),
                                min=round(min(values), 4), max=round(max(values), 4),
                                seeds=[round(v, 4) for v in values])
            s = summary[key]
            print(f"  {key:<40} {s['mean']:+.2f} ± {s['sd']:.2f}  (range {s['min']:+.2f} .. {s['max']:+.2f})")
        report[lab] = dict(summary, **extra.get(lab, {}), torch_version=torch.__version__)
        print()
    RESULTS.parent.mkdir(exist_ok=True)
    text = json.dumps(report, indent=1) + "\n"
    write_atomically(RESULTS, lambda tmp: Path(tmp).write_text(text))
    print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
