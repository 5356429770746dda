"""rtc-replay's per-switch re-sampling: the replayed policy, and every (mode, β) variant of one switch.

Every variant goes through the inference node's code path (``ChunkSampler.sample``) from one noise draw per
switch shared by every variant. Axes: H = horizon, D = action dim (physical). Flow time t = 1 is noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rtc_controller.policy.base import FlowPolicy
from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk
from rtc_controller.rtc import PrefixSchedule

from .replay_config import ReplayConfig, ReplayError
from .replay_switches import SwitchInput

__all__ = ["make_replay_policy", "resample_switch"]


def _check_policy(policy: FlowPolicy, sw: SwitchInput) -> None:
    if tuple(policy.action_names) != tuple(sw.chunk.names):
        raise ReplayError(
            f"the policy's action names {list(policy.action_names)} differ from the recorded chunk's "
            f"{list(sw.chunk.names)}"
        )
    if policy.horizon != sw.chunk.horizon:
        raise ReplayError(f"the policy's horizon {policy.horizon} differs from the recorded H = {sw.chunk.horizon}")


def resample_switch(
    sampler: ChunkSampler,
    sw: SwitchInput,
    *,
    modes: Sequence[str],
    betas: Sequence[float],
    schedule: PrefixSchedule,
    seed: int,
) -> tuple[np.ndarray, dict[tuple[str, float], np.ndarray]]:
    """Re-sample one switch: (unguided ``[H, D]``, {(mode, β): guided ``[H, D]``}), one noise for all variants.

    Every variant is ``sampler.sample`` — the inference node's code path (Y and W from the previous chunk, Y to
    model space, ``rtc.sample``, ``policy.to_physical``) — from one ``sampler.prepare(observation)`` per switch
    (π0.5's prefix pass is the expensive part) and one PRNG key per switch (seed, switch index). ``none`` ignores
    β (every β maps to the unguided chunk, as in the inference node).
    """
    import jax

    _check_policy(sampler.policy, sw)
    if not math.isclose(sampler.dt_s, sw.chunk.dt_s, rel_tol=1e-9):
        raise ReplayError(
            f"switch {sw.index}: the sampler's Δt {sampler.dt_s} s differs from the chunk's {sw.chunk.dt_s} s"
        )
    obs = sw.observation
    prepared = sampler.prepare(obs)
    key = jax.random.fold_in(jax.random.key(seed), sw.index)
    previous = PreviousChunk(sw.previous.actions, sw.previous.t_obs_s)

    def run(mode: str, beta: float) -> np.ndarray:
        settings = GuidanceSettings(
            sw.d, sw.execution_horizon, max_guidance_weight=float(beta), mode=mode, schedule=schedule
        )  # fmt: skip
        return sampler.sample(obs, previous=previous, settings=settings, key=key, prepared=prepared).actions

    unguided = run("none", 0.0)
    out: dict[tuple[str, float], np.ndarray] = {}
    for mode in modes:
        for beta in betas:
            out[(mode, beta)] = unguided if mode == "none" else run(mode, beta)
    return unguided, out


def make_replay_policy(cfg: ReplayConfig, sw: SwitchInput) -> FlowPolicy:
    """``cfg.policy`` built with ``cfg.policy_params``, shaped like the recorded chunks where the params say nothing."""
    try:
        from rtc_controller.app.policies import make_policy
    except ImportError as err:  # pragma: no cover - the registry ships with the package
        raise ReplayError(f"cannot import the policy registry: {err}") from err
    params = dict(cfg.policy_params)
    if cfg.policy == "sim":  # the sim policy takes the recorded chunk's shape
        params.setdefault("horizon", sw.chunk.horizon)
        params.setdefault("dt_s", sw.chunk.dt_s)
    elif cfg.policy == "pi05":  # its actions are named like the recorded chunks
        if not params.get("policy_config"):  # without a policy section H is taken from the recording
            params.setdefault("action_horizon", sw.chunk.horizon)
        params.setdefault("action_names", tuple(sw.chunk.names))
    try:
        return make_policy(cfg.policy, **params)
    except Exception as err:  # noqa: BLE001 - checkpoint/config errors of any policy become one clear message
        raise ReplayError(f"cannot build policy {cfg.policy!r} with {params}: {type(err).__name__}: {err}") from err
