"""Normalisation statistics of a training set, by openpi's rule (``scripts/compute_norm_stats.py``).

openpi computes the statistics of ``state`` and ``actions`` on what its data loader yields after the data
transforms: one sample per action step t, with the action *chunk* a[t … t+H−1] (LeRobot clamps indices past
the episode's end, so the last action repeats) and, with delta actions, a[t+k] − s[t] on the masked dims
(``DeltaActions``). Statistics per dim: mean, std = sqrt(E[x²] − E[x]²), and q01/q99 from a histogram of
5000 bins over [min − 1e-10, max + 1e-10]: the left edge of the first bin whose cumulative count reaches
q·N (``RunningStats`` fed the whole set at once). The result is written as ``norm_stats.json`` and read by
``policy/pi05/norm_stats.py``.

Axes: T = action steps of an episode, H = action horizon, D = action dims, S = state dims.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from rtc_controller.policy.pi05.norm_stats import NormStats
from rtc_controller.train.dataset import Episode

logger = logging.getLogger(__name__)

QUANTILE_BINS = 5000  # openpi's RunningStats._num_quantile_bins
EDGE_MARGIN = 1e-10  # openpi widens [min, max] by this before binning
QUANTILES = (0.01, 0.99)
NARROW_RANGE = 1e-4  # q99 − q01 below this: quantile normalisation amplifies noise (warned about)


def action_chunks(actions: np.ndarray, horizon: int) -> np.ndarray:
    """[T, D] -> [T, H, D]: chunk t is a[t … t+H−1], indices past the end clamped to T − 1 (LeRobot)."""
    t = actions.shape[0]
    idx = np.minimum(np.arange(t)[:, None] + np.arange(horizon)[None, :], t - 1)
    return actions[idx]


def delta_mask_array(delta_action_mask: Sequence[bool], action_dim: int) -> np.ndarray:
    """The mask padded with False to ``action_dim`` (openpi's ``make_bool_mask`` semantics)."""
    if len(delta_action_mask) > action_dim:
        raise ValueError(f"delta_action_mask has {len(delta_action_mask)} entries for {action_dim} action dims")
    mask = np.zeros(action_dim, bool)
    mask[: len(delta_action_mask)] = delta_action_mask
    return mask


StateVector = Callable[[np.ndarray], np.ndarray]  # recorded states [T, S] -> the model's state vectors [T, S']


def target_chunks(episode: Episode, horizon: int, delta_action_mask: Sequence[bool] = (),
                  state_vector: StateVector | None = None) -> np.ndarray:
    """float64 [T, H, D]: the chunks the model learns, in physical units (delta dims relative to s[t]).

    Delta dim i subtracts dim i of the model's state vector (openpi's ``DeltaActions``): ``state_vector`` maps the
    recorded state to it (the policy section's ``state`` segments; None: the recorded state as it is)."""
    chunks = action_chunks(np.asarray(episode.actions, np.float64), horizon)
    mask = delta_mask_array(delta_action_mask, chunks.shape[-1])
    if mask.any():
        state = np.asarray(episode.state if state_vector is None else state_vector(episode.state), np.float64)
        if state.shape[1] < mask.size:
            raise ValueError(f"delta actions need the state to cover the {mask.size} action dims, "
                             f"got {state.shape[1]} state dims")
        chunks = chunks - np.where(mask, state[:, : mask.size], 0.0)[:, None, :]
    return chunks


def openpi_quantiles(hist: np.ndarray, edges: np.ndarray, count: int, q: float) -> np.ndarray:
    """Per dim: the left edge of the first histogram bin whose cumulative count reaches q·count.

    hist [D, bins], edges [D, bins + 1]. Example: values 1 … 100 (one dim), q = 0.99 -> ≈ 98.99 (the bin holding 99).
    """
    cumsum = np.cumsum(hist, axis=1)
    idx = np.array([np.searchsorted(c, q * count) for c in cumsum])
    return edges[np.arange(edges.shape[0]), idx]


class StatsAccumulator:
    """Two passes over the data: ``add`` every batch (moments, range), then ``add_histogram`` every batch again."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = self._sumsq = self._min = self._max = None
        self._hist: np.ndarray | None = None
        self._edges: np.ndarray | None = None

    def add(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, np.float64).reshape(-1, batch.shape[-1])
        if self._sum is None:
            self._sum, self._sumsq = np.zeros(x.shape[1]), np.zeros(x.shape[1])
            self._min, self._max = np.full(x.shape[1], np.inf), np.full(x.shape[1], -np.inf)
        self.count += x.shape[0]
        self._sum += x.sum(0)
        self._sumsq += np.square(x).sum(0)
        self._min = np.minimum(self._min, x.min(0))
        self._max = np.maximum(self._max, x.max(0))

    def add_histogram(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, np.float64).reshape(-1, batch.shape[-1])
        if self._edges is None:
            self._edges = np.stack([np.linspace(lo - EDGE_MARGIN, hi + EDGE_MARGIN, QUANTILE_BINS + 1)
                                    for lo, hi in zip(self._min, self._max, strict=True)])
            self._hist = np.zeros((x.shape[1], QUANTILE_BINS))
        for i in range(x.shape[1]):
            self._hist[i] += np.histogram(x[:, i], bins=self._edges[i])[0]

    def stats(self) -> NormStats:
        if self.count < 2 or self._hist is None:
            raise ValueError(f"norm stats need at least 2 samples and both passes, got {self.count}")
        mean = self._sum / self.count
        std = np.sqrt(np.maximum(0.0, self._sumsq / self.count - mean**2))
        q01, q99 = (openpi_quantiles(self._hist, self._edges, self.count, q) for q in QUANTILES)
        return NormStats(mean=mean, std=std, q01=q01, q99=q99)


def padded_state(state: np.ndarray, pad_dim: int | None, state_vector: StateVector | None = None) -> np.ndarray:
    """States [T, S] as the model's state vectors (``state_vector``; None: as recorded), zero-padded to
    [T, pad_dim] (as ``Pi05PolicyConfig.state_pad_dim`` pads before normalising)."""
    state = np.asarray(state if state_vector is None else state_vector(state), np.float64)
    if pad_dim is None:
        return state
    if state.shape[-1] > pad_dim:
        raise ValueError(f"state has {state.shape[-1]} dims > state_pad_dim {pad_dim}")
    return np.pad(state, ((0, 0), (0, pad_dim - state.shape[-1])))


def compute_norm_stats(episodes: Callable[[], Iterable[Episode]], *, horizon: int,
                       delta_action_mask: Sequence[bool] = (), state_pad_dim: int | None = None,
                       names: dict[str, Sequence[str]] | None = None,
                       state_vector: StateVector | None = None) -> dict[str, NormStats]:
    """``{"state": …, "actions": …}`` over every action step of the episodes ``episodes()`` yields (called
    twice, once per pass; images are not needed). The state is mapped to the model's state vector
    (``state_vector``; None: as recorded) and zero-padded to ``state_pad_dim`` first, so the statistics cover what
    the policy normalises. ``names`` (``{"state": […], "actions": […]}``) only labels the warning for dims whose
    q99 − q01 < ``NARROW_RANGE`` (a None name: a dim that is constant on purpose, not warned about)."""
    acc = {"state": StatsAccumulator(), "actions": StatsAccumulator()}
    for pass_ in ("add", "add_histogram"):
        for ep in episodes():
            getattr(acc["state"], pass_)(padded_state(ep.state, state_pad_dim, state_vector))
            getattr(acc["actions"], pass_)(target_chunks(ep, horizon, delta_action_mask, state_vector))
    out = {key: a.stats() for key, a in acc.items()}
    for key, s in out.items():
        narrow = np.flatnonzero(s.q99 - s.q01 < NARROW_RANGE)
        if narrow.size:
            known = list((names or {}).get(key, []))
            labels = [known[i] if i < len(known) else str(i) for i in narrow]
            labels = [label for label in labels if label is not None]  # None: a zeros segment (constant on purpose)
            if not labels:
                continue
            logger.warning("norm stats %r: dims %s barely vary (q99 − q01 < %g); quantile normalisation divides "
                           "by that range", key, labels, NARROW_RANGE)
    return out
