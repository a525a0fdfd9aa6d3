"""Training in two processes (DistributedDataParallel, Gloo, on the CPU), and the pieces that make it exact.

The two-process test starts two processes the way torchrun does (its environment variables, a
rendezvous on this machine): each runs :func:`worker` and writes what it ended with (a digest of
its weights, its history) to a JSON file, which the test compares across processes and runs. The
command line is tested under torchrun itself.
"""
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib.checkpoint import load_checkpoint, load_model
from srlib.distributed import World, this_process
from srlib.train import _shuffled_batches, fit

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(batch_size=4, lr=1e-2, checkpoint_every=5, eval_every=5, progress=False, device="cpu")


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(2)]


def digest(model: torch.nn.Module) -> str:
    weights = model.state_dict()
    return hashlib.sha256(b"".join(k.encode() + weights[k].numpy().tobytes() for k in sorted(weights))).hexdigest()


def train(steps: int, checkpoint, init_seed: int, kind: str = "espcn", **kwargs):
    """ESPCN x2 (quick size) on 12-pixel patches of two random images; or, by ``kind``, MDSR trained at
    x2, x3 and x4 (one scale per step), or DRRN (batch normalisation in every unit)."""
    from srlib.data import PatchDataset
    from srlib.models import build, spec

    torch.manual_seed(init_seed)
    if kind == "mdsr":
        model = build("mdsr", 2, size="quick", n_resblocks=1, n_feats=8)
        data = PatchDataset(images(), scales=(2, 3, 4), patch_size=24, channels="rgb", seed=0)
    elif kind == "drrn":
        model = build("drrn", 2, size="quick")
        data = PatchDataset(images(), 2, patch_size=12, upsampled=True, seed=0)
    else:
        model = build("espcn", 2, size="quick")
        data = PatchDataset(images(), 2, patch_size=12, seed=0)
    history = fit(model, data, steps=steps, loss_fn=spec(kind).loss, checkpoint=checkpoint, **dict(RUN, **kwargs))
    return model, history


def worker(out_dir: Path, runs: list[str]) -> None:
    """In each process: train each ``[kind/]name:steps`` of ``runs``, and write this rank's outcome."""
    from srlib.distributed import leave

    rank = this_process().rank
    validated_by = out_dir / f"validated_by_{rank}"

    def validate(model):
        validated_by.touch()
        return 10.0 + float(next(model.parameters()).abs().mean())

    for run in runs:
        kind, _, run = run.rpartition("/")
        name, steps = run.split(":")
        # Each rank starts from other weights: DistributedDataParallel must make them equal.
        model, history = train(int(steps), out_dir / f"{name}.pt", init_seed=100 + rank, kind=kind or "espcn",
                               validate=validate)
        outcome = dict(digest=digest(model), history=history.to_dict())
        (out_dir / f"{name}.{int(steps)}.rank{rank}.json").write_text(json.dumps(outcome))
    leave()


def spawn(monkeypatch, out_dir: Path, *runs: str) -> None:
    """Run :func:`worker` in two new processes, with the variables torchrun would give them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # a free port for the rendezvous
    with monkeypatch.context() as patch:  # the children inherit this environment
        for name, value in dict(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                                WORLD_SIZE="2").items():
            patch.setenv(name, value)
        started = torch.multiprocessing.start_processes(_spawned, args=(out_dir, runs), nprocs=2,
                                                        start_method="spawn", join=False)
        deadline = time.monotonic() + 120
        while not started.join(timeout=1):  # raises if a process failed
            if time.monotonic() > deadline:
                for process in started.processes:
                    process.kill()
                pytest.fail("the two processes did not finish within 120 s")


def _spawned(rank: int, out_dir: Path, runs: tuple[str, ...]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))
    worker(out_dir, list(runs))


def torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", *args]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def outcomes(out_dir: Path, name: str, steps: int) -> list[dict]:
    return [json.loads((out_dir / f"{name}.{steps}.rank{rank}.json").read_text()) for rank in (0, 1)]


# ---------------------------------------------------------------------------- without processes


def test_a_single_process_world_changes_nothing(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = this_process()
    assert world == World() and world.main and world.facts == {}
    order = iter([[3, 1, 2]])
    assert world.share(order) is order
    assert world.mean(0.25) == 0.25 and world.any(True) is True and world.from_main(lambda: 7) == 7
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc_per_node=1: one process, as without torchrun
    monkeypatch.setenv("RANK", "0")
    assert this_process() == World()


def test_torchrun_variables_name_the_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = this_process()
    assert (world.rank, world.size, world.local_rank, world.main) == (5, 4, 1, False)
    assert world.facts == {"processes": 4}


def test_each_process_gets_a_disjoint_part_of_every_batch():
    batch_size, size = 3, 4
    stream = list(islice(_shuffled_batches(50, batch_size * size, seed=2, start_batch=0), 8))
    parts = [list(World(rank=r, size=size).share(iter(stream))) for r in range(size)]
    for step, whole in enumerate(stream):
        mine = [parts[r][step] for r in range(size)]
        assert all(len(p) == batch_size for p in mine)
        assert [i for p in mine for i in p] == whole  # disjoint, and together the whole batch
    # A function of (seed, step, rank): starting at any step gives the same parts from there on.
    later = World(rank=2, size=size).share(_shuffled_batches(50, batch_size * size, seed=2, start_batch=5))
    assert list(islice(later, 3)) == parts[2][5:8]


# ---------------------------------------------------------------------------- two processes


@pytest.mark.slow
def test_two_processes_train_resume_and_match_one_process(tmp_path, monkeypatch):
    spawn(monkeypatch, tmp_path, "straight:20", "resumed:10")  # a run of 20 steps; a run stopped at 10
    spawn(monkeypatch, tmp_path, "resumed:20")  # new processes, asked for 20 steps: it continues

    straight, first, resumed = (outcomes(tmp_path, *run) for run in [("straight", 20), ("resumed", 10),
                                                                     ("resumed", 20)])
    for ranks in (straight, first, resumed):
        assert ranks[0]["digest"] == ranks[1]["digest"]  # both processes hold the same weights
        assert ranks[0]["history"]["loss"] == ranks[1]["history"]["loss"]  # the mean over the processes
    assert [s for s, _ in straight[0]["history"]["val"]] == [5, 10, 15, 20]
    assert straight[0]["history"]["val"] == straight[1]["history"]["val"]  # rank 0's PSNR, handed on
    assert sorted(p.name for p in tmp_path.glob("validated_by_*")) == ["validated_by_0"]

    # The resumed run continued from step 10 and ended where the uninterrupted one did.
    assert resumed[0]["history"]["steps"] == list(range(1, 21))
    assert resumed[0]["history"]["loss"][:10] == first[0]["history"]["loss"]
    assert resumed[0]["history"]["loss"] == straight[0]["history"]["loss"]
    assert resumed[0]["digest"] == straight[0]["digest"]

    # The checkpoint is a one-process checkpoint: bare keys, loadable without torchrun.
    ckpt = load_checkpoint(tmp_path / "straight.pt")
    assert ckpt["step"] == 20 and ckpt["facts"]["processes"] == 2 and ckpt["facts"]["batch_size"] == 4
    assert not any(key.startswith("module.") for key in ckpt["model_state"])
    model = load_model(tmp_path / "straight.pt")
    assert digest(model) == straight[0]["digest"]
    assert model.srlib_history.loss == straight[0]["history"]["loss"]

    # Two processes of 4 patches learn what one process of 8 does (up to rounding): each step, the
    # two parts are the two halves of the same 8 patches, and the gradients are averaged.
    alone, history = train(20, None, init_seed=100, batch_size=8)
    assert history.loss == pytest.approx(straight[0]["history"]["loss"], rel=1e-4)
    for key, value in alone.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_command_line_under_torchrun(tmp_path):
    out = tmp_path / "espcn_x2.pt"
    done = torchrun("-m", "srlib", "train", "espcn", "--scale", "2", "--steps", "6", "--eval-every", "3",
                    "--batch-size", "4", "--patch-size", "24", "--out", str(out), "--no-progress", cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert sum(line.startswith("training ESPCN") for line in lines) == 1  # printed by rank 0 only
    assert "2 processes, 8 patches per step" in done.stdout
    assert sum(line.startswith("done: 6 steps") for line in lines) == 1
    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 6 and [s for s, _ in ckpt["history"]["val"]] == [3, 6]



@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mdsr", "drrn"])
def test_two_processes_match_one_process_for_several_scales_and_batch_norm(tmp_path, monkeypatch, kind):
    """MDSR: both processes train the same scale at every step, whose head alone gets gradients.
    DRRN: batch normalisation sees the statistics of all 8 patches, as one process would."""
    spawn(monkeypatch, tmp_path, f"{kind}/run:6")
    ranks = outcomes(tmp_path, "run", 6)
    assert ranks[0]["digest"] == ranks[1]["digest"]  # weights *and* running statistics
    assert ranks[0]["history"]["loss"] == ranks[1]["history"]["loss"]
    alone, history = train(6, None, init_seed=100, kind=kind, batch_size=8)
    assert history.loss == pytest.approx(ranks[0]["history"]["loss"], rel=1e-4)
    # The trained networks compute the same function on a batch. Weights are not compared one by one,
    # nor the running statistics: a bias in front of a batch norm has a zero gradient up to rounding,
    # which Adam turns into full-size steps, and the running mean follows that bias.
    model = load_model(tmp_path / "run.pt")
    probe = torch.rand(4, alone.in_channels, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.train()(probe), alone.train()(probe), rtol=1e-3, atol=1e-3)
    if kind == "mdsr":  # the six steps trained more than one scale's upsampler
        torch.manual_seed(100)
        start = train(0, None, init_seed=100, kind=kind)[0].state_dict()
        trained = {key.split(".")[1] for key, value in alone.state_dict().items()
                   if key.startswith("upsample.") and not torch.equal(value, start[key])}
        assert len(trained) >= 2, trained


def test_a_process_part_carries_the_first_index_of_the_whole_batch():
    import pickle

    parts = [next(World(rank=r, size=2).share(iter([[7, 3, 9, 4]]))) for r in (0, 1)]
    assert parts == [[7, 3], [9, 4]] and [p.first for p in parts] == [7, 7]
    again = pickle.loads(pickle.dumps(parts[1]))  # as sent to a DataLoader worker
    assert again == [9, 4] and again.first == 7
