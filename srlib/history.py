"""What a training run records: its losses, learning rates and validation PSNRs.

Kept in plain Python so that it round-trips through JSON inside a checkpoint
(:mod:`srlib.checkpoint`), and read by :func:`srlib.plots.plot_history`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """What a training run records, in plain Python so that it round-trips through JSON: for every
    optimizer step its number (from 1), loss and learning rate; (step, PSNR in dB) pairs from
    validation; and the wall-clock seconds, summed over a run and its resumptions."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, step: int, loss: float, lr: float) -> None:
        self.steps.append(step)
        self.loss.append(loss)
        self.lr.append(lr)

    @property
    def last_psnr(self) -> float | None:
        return self.val[-1][1] if self.val else None

    @property
    def best_psnr(self) -> float | None:
        return max(p for _, p in self.val) if self.val else None

    def to_dict(self) -> dict:
        return {"steps": list(self.steps), "loss": list(self.loss), "lr": list(self.lr),
                "val": [[int(s), float(p)] for s, p in self.val], "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(steps=[int(s) for s in d.get("steps", [])], loss=[float(v) for v in d.get("loss", [])],
                   lr=[float(v) for v in d.get("lr", [])], val=[(int(s), float(p)) for s, p in d.get("val", [])],
                   seconds=float(d.get("seconds", 0.0)))

    def __repr__(self) -> str:
        psnr = f", last PSNR {self.last_psnr:.2f} dB" if self.val else ""
        loss = f", last loss {self.loss[-1]:.4g}" if self.loss else ""
        return f"History({len(self.steps)} steps{loss}{psnr}, {self.seconds:.1f} s)"
