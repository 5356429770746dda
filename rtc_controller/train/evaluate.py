"""An offline check of a trained policy on recorded episodes: how far its chunks are from the demonstrations.

For evenly spread steps t of the given episodes, the policy (through ``Pi05Policy.infer``: the inference path,
unguided, n Euler steps) samples K chunks from the observation of step t; each is compared with the recorded
chunk a[t … t+H−1] (clamped at the end). Per arm, the TCP position error ‖p̂ − p‖ [mm] is averaged over the
chunk. Because demonstrations are multimodal (which bin), the best of the K samples is reported beside the
first; ``first_mm`` is the error of the first action alone (where the chunk starts, which RTC stitches to).
It says whether training worked before the policy goes into the twin; task success is ``rtc-eval``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtc_controller.policy.pi05.policy import Pi05Policy
from rtc_controller.train.dataset import EpisodeDataset
from rtc_controller.train.norm_stats import action_chunks
from rtc_controller.train.samples import step_observation

POSITION_FIELDS = ("x", "y", "z")
MM_PER_M = 1000.0


def position_groups(names: Sequence[str]) -> list[list[int]]:
    """Indices of each arm's x, y, z among ``names`` (``<arm>_x`` …); empty when the layout has none."""
    groups = {}
    for i, n in enumerate(names):
        arm, _, field = n.rpartition("_")
        if field in POSITION_FIELDS and arm:
            groups.setdefault(arm, {})[field] = i
    return [[g[f] for f in POSITION_FIELDS] for g in groups.values() if len(g) == len(POSITION_FIELDS)]


@dataclass(frozen=True)
class ChunkErrors:
    """Position errors [mm], one value per evaluated step (mean over arms and chunk steps)."""

    first_sample_mm: np.ndarray
    best_of_k_mm: np.ndarray
    first_action_mm: np.ndarray
    k: int

    def summary(self) -> str:
        def stats(x):
            return f"median {np.median(x):.1f} mm, mean {np.mean(x):.1f} mm"

        return (f"{self.first_sample_mm.size} steps: chunk position error {stats(self.first_sample_mm)}; best of "
                f"{self.k}: {stats(self.best_of_k_mm)}; first action: {stats(self.first_action_mm)}")


def chunk_errors(policy: Pi05Policy, dataset: EpisodeDataset, episodes: Sequence[int], *, num_samples: int = 32,
                 k: int = 4, num_steps: int = 10, seed: int = 0) -> ChunkErrors:
    """Sample ``k`` chunks at ``num_samples`` evenly spread steps of ``episodes`` and measure their errors."""
    groups = position_groups(policy.action_names)
    if not groups:
        raise ValueError(f"no <arm>_x/_y/_z action dims in {policy.action_names}: position errors need them")
    steps = [(e, t) for e in episodes for t in range(dataset.episodes[e].length)]
    if not steps:
        raise ValueError("no episodes to evaluate on")
    picks = np.linspace(0, len(steps) - 1, min(num_samples, len(steps))).round().astype(int)
    first, best, start = [], [], []
    loaded: dict[int, object] = {}
    for n, i in enumerate(picks):
        e, t = steps[i]
        ep = loaded.setdefault(e, dataset.load(e))
        obs = step_observation(ep, t)
        true = action_chunks(np.asarray(ep.actions, np.float64), policy.horizon)[t]
        errs, starts = [], []
        for j in range(k):
            pred = policy.infer(obs, num_steps=num_steps, seed=seed + n * k + j)
            dist = np.stack([np.linalg.norm(pred[:, g] - true[:, g], axis=-1) for g in groups])  # [arms, H]
            errs.append(dist.mean() * MM_PER_M)
            starts.append(dist[:, 0].mean() * MM_PER_M)
        first.append(errs[0])
        best.append(min(errs))
        start.append(starts[0])
    return ChunkErrors(np.array(first), np.array(best), np.array(start), k)
