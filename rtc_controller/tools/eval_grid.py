"""``rtc-eval``'s grid: methods × execution horizons × delays, the same seeds in every cell (ROS-free).

- A method is a guidance mode with its β: ``stop`` (the config's β), ``stop@1`` (β = 1), ``none``, ``hard``,
  ``full``, ``trained`` (the training-time-RTC policy, ``EvalConfig.trained_policy_config``).
- An execution horizon row is a fixed s (``25``) or s = max(d, floor) (``max5``: the RTC paper's sweep, s grows
  with d so that d ≤ s always holds). A fixed s leaves out the delays d > s (RTC needs d ≤ s: beyond it inference
  runs back to back, which the max-row measures).
- A cell is (method, row, d); its file ``cells/<method>_<row>_d<d>.json`` holds every episode's summary and the
  fingerprint of what made it: a finished cell is not run again (the grid resumes), one made otherwise is.

Cells run in this process or in ``workers`` processes (each builds its own evaluators once and runs whole
cells; JAX keeps to one thread per worker, so two workers use two cores).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rtc_controller.rtc import GUIDANCE_MODES
from rtc_controller.tools.eval_config import EvalConfig, fingerprint

_METHOD = re.compile(r"^(?P<mode>[a-z]+)(@(?P<beta>[0-9.eE+-]+))?$")
_ROW = re.compile(r"^(?:(?P<fixed>\d+)|max(?P<floor>\d+))$")


@dataclass(frozen=True)
class Method:
    """A guidance mode and its β (None: the grid's ``max_guidance_weight``)."""

    mode: str
    beta: float | None = None

    @property
    def name(self) -> str:
        return self.mode if self.beta is None else f"{self.mode}@{self.beta:g}"

    @staticmethod
    def parse(text: str) -> Method:
        """``stop`` or ``stop@1`` -> Method; ValueError naming the text otherwise."""
        m = _METHOD.match(text.strip())
        if m is None or m["mode"] not in GUIDANCE_MODES:
            raise ValueError(f"method {text!r}: expected <mode> or <mode>@<β>, mode one of {GUIDANCE_MODES}")
        beta = None if m["beta"] is None else float(m["beta"])
        if beta is not None and not beta >= 0:
            raise ValueError(f"method {text!r}: β must be >= 0")
        return Method(m["mode"], beta)


@dataclass(frozen=True)
class HorizonRow:
    """The execution horizon of a grid row: ``fixed`` s, or s = max(d, ``floor``) [action steps]."""

    fixed: int | None = None
    floor: int | None = None

    @property
    def name(self) -> str:
        return f"s{self.fixed}" if self.fixed is not None else f"smax{self.floor}"

    @property
    def label(self) -> str:
        return f"s = {self.fixed}" if self.fixed is not None else f"s = max(d, {self.floor})"

    def s_for(self, delay: int) -> int:
        return self.fixed if self.fixed is not None else max(delay, int(self.floor or 1))

    def allows(self, delay: int) -> bool:
        return delay <= self.s_for(delay)

    @staticmethod
    def parse(text: str) -> HorizonRow:
        """``25`` or ``max5`` -> HorizonRow; ValueError naming the text otherwise."""
        m = _ROW.match(text.strip())
        if m is None or int(m["fixed"] or m["floor"]) < 1:
            raise ValueError(f"execution horizon {text!r}: expected an int >= 1 (s) or max<N> (s = max(d, N))")
        return HorizonRow(fixed=int(m["fixed"])) if m["fixed"] else HorizonRow(floor=int(m["floor"]))


@dataclass(frozen=True)
class Cell:
    method: Method
    row: HorizonRow
    delay: int

    @property
    def execution_horizon(self) -> int:
        return self.row.s_for(self.delay)

    @property
    def key(self) -> str:
        return f"{self.method.name}_{self.row.name}_d{self.delay}"

    def config(self, cfg: EvalConfig) -> EvalConfig:
        """The grid's config as this cell runs it (its s and β)."""
        beta = cfg.max_guidance_weight if self.method.beta is None else self.method.beta
        return dataclasses.replace(cfg, execution_horizon=self.execution_horizon, max_guidance_weight=beta)


def grid_cells(methods: list[Method], rows: list[HorizonRow], delays: list[int]) -> list[Cell]:
    """Every (method, row, d) a grid runs, rows' d > s left out."""
    return [Cell(m, r, d) for r in rows for d in delays if r.allows(d) for m in methods]


def cell_path(out: Path, cell: Cell) -> Path:
    return out / "cells" / f"{cell.key}.json"


def cell_fingerprint(cfg: EvalConfig, cell: Cell) -> dict:
    """What makes the cell: its config (with the policy that runs it) and its coordinates."""
    c = cell.config(cfg)
    if cell.method.mode == "trained" and cfg.trained_policy_config:
        c = dataclasses.replace(c, policy_config=cfg.trained_policy_config)
    c = dataclasses.replace(c, trained_policy_config="")
    return fingerprint(c) | {"method": cell.method.name, "row": cell.row.name, "delay": cell.delay}


def is_done(cfg: EvalConfig, cell: Cell, out: Path) -> bool:
    p = cell_path(out, cell)
    return p.exists() and json.loads(p.read_text()).get("config") == cell_fingerprint(cfg, cell)


def write_cell(cfg: EvalConfig, cell: Cell, out: Path, episodes: list[dict]) -> None:
    """The cell's file, written whole (a stopped grid never leaves half a cell)."""
    p = cell_path(out, cell)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"config": cell_fingerprint(cfg, cell), "method": cell.method.name,
                               "row": cell.row.name, "delay": cell.delay, "episodes": episodes}))  # fmt: skip
    tmp.replace(p)


def read_cell(cell: Cell, out: Path) -> list[dict]:
    return json.loads(cell_path(out, cell).read_text())["episodes"]
