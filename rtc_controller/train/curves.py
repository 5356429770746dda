"""The loss log (``loss.csv``) and its figure (``loss.png``).

Rows: step (optimiser steps done), split (``train``: mean over the last ``log_every`` steps; ``val``: the
held-out episodes, EMA weights, fixed noise), loss, grad_norm, lr, elapsed_s (wall time of the run so far,
across resumes). A resumed run first drops the rows logged after its checkpoint; they are logged again,
identically.
"""

from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass

COLUMNS = ("step", "split", "loss", "grad_norm", "lr", "elapsed_s")
LOSS_CSV = "loss.csv"
LOSS_PNG = "loss.png"


@dataclass(frozen=True)
class LossRow:
    step: int
    split: str
    loss: float
    grad_norm: float = float("nan")
    lr: float = float("nan")
    elapsed_s: float = float("nan")


class LossLog:
    """Append-only CSV of ``LossRow``s."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        if not self.path.is_file():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)

    def rows(self) -> list[LossRow]:
        with open(self.path, newline="") as f:
            return [LossRow(int(r["step"]), r["split"], float(r["loss"]), float(r["grad_norm"]), float(r["lr"]),
                            float(r["elapsed_s"])) for r in csv.DictReader(f)]

    def truncate_after(self, step: int) -> float:
        """Drop rows past ``step``; returns the elapsed time logged at or before it (0 if none)."""
        keep = [r for r in self.rows() if r.step <= step]
        with open(self.path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in keep:
                w.writerow([getattr(r, c) for c in COLUMNS])
        return max((r.elapsed_s for r in keep), default=0.0)

    def append(self, row: LossRow) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([getattr(row, c) for c in COLUMNS])


def plot_loss(log: LossLog, path: str | pathlib.Path, *, title: str = "") -> pathlib.Path:
    """Training and validation loss (log scale) and the learning rate over optimiser steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = log.rows()
    fig, ax = plt.subplots(figsize=(7, 4))
    for split, style in (("train", "-"), ("val", "o-")):
        pts = [(r.step, r.loss) for r in rows if r.split == split]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=f"{split} loss", markersize=3)
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("flow-matching loss (MSE of v − (ε − a))")
    lr = [(r.step, r.lr) for r in rows if r.split == "train"]
    if lr:
        ax2 = ax.twinx()
        ax2.plot(*zip(*lr, strict=True), color="grey", alpha=0.4, label="learning rate")
        ax2.set_ylabel("learning rate")
    if rows:
        ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
