"""The inference node's parameters (ROS-free; ``ros/inference_node`` declares and wires them).

The table (one ``param_schema.Param`` per parameter: default, description, unit, validator, run-time change; H, s
and Δt are ``chunk_timing.TIMING_PARAMS``, s settable at run time here); :func:`validate_parameter` and
:func:`changes_refusal`, the pure checks the on-set callback runs (each value, then against H, s and Δt); and the
π0.5 policy section and camera topics the parameters name. Times [s], Δt = 1/``action_rate_hz``, H and s [action
steps].
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.app.policies import POLICY_NAMES, node_policy_params
from rtc_controller.chunk_timing import MAX_HORIZON, SHARED_WITH_EXECUTOR, TIMING_PARAMS, ChunkTiming, timing_mismatches
from rtc_controller.param_schema import Param, finite_in_range, in_range, non_negative, one_of, positive
from rtc_controller.policy.compilation_cache import cache_dir_refusal
from rtc_controller.policy.inference_loop import parse_inference_delay
from rtc_controller.rtc import (
    GUIDANCE_MODES,
    MAX_CANDIDATES,
    MAX_GUIDANCE_WEIGHT,
    PREFIX_SCHEDULES,
    guidance_weight_refusal,
)

__all__ = [
    "MAX_GUIDANCE_WEIGHT",
    "MAX_NUM_STEPS",
    "PARAMETERS",
    "SHARED_WITH_EXECUTOR",
    "camera_topics",
    "changes_refusal",
    "configured_camera_topics",
    "executor_mismatches",
    "policy_identity",
    "policy_params",
    "policy_section",
    "validate_parameter",
]

MAX_NUM_STEPS = 1000


def _delay_form(value: Any) -> str | None:
    """``'auto'`` or an int within the largest horizon (the bounds by this node's H and H - s are
    :func:`validate_parameter`'s)."""
    try:
        parse_inference_delay(value, MAX_HORIZON)
    except ValueError as exc:
        return str(exc)
    return None


PARAMETERS: dict[str, Param] = {
    "policy": Param("sim", "flow policy: sim (closed-form flow on a built-in two-arm scene) | pi05 (an openpi π0.5 "
                   "checkpoint) | twin (mixture over the twin's bin choices) | twin_expert (the twin's scripted "
                   "expert)", one_of(*POLICY_NAMES)),
    "policy_config": Param("", "π0.5 policy section: YAML path or a name under config/policy/ (checkpoint, "
                           "tokenizer, horizon, state/action mapping, camera topics; policy pi05)"),
    "checkpoint": Param("", "π0.5 openpi checkpoint directory with params/ and assets/<id>/norm_stats.json "
                       "(policy pi05)"),
    "tokenizer_path": Param("", "PaliGemma SentencePiece model file (policy pi05)"),
    "horizon": TIMING_PARAMS["horizon"],
    "action_rate_hz": TIMING_PARAMS["action_rate_hz"],
    "action_names": Param(list(action_names("cartesian")), "chunk dimension names (the executor's)"),
    "camera_slots": Param((), "model camera slots, each subscribed as rtc/camera/<slot>"),
    "use_compressed_images": Param(False, "subscribe rtc/camera/<slot>/compressed (CompressedImage)"),
    "chunk_history": Param(8, "published chunks kept to guide toward the executor's active one", finite_in_range(1)),
    "seed": Param(0, "PRNG seed of the sampling noise"),
    "compilation_cache_dir": Param("", "JAX persistent compilation cache: a writable directory ('' = off; ~ "
                                   "expanded; entries under <dir>/jax<version>-<backend>-<model>): a restart loads, "
                                   "not compiles", cache_dir_refusal),
    "num_steps": Param(10, f"n: denoising (Euler) steps (1..{MAX_NUM_STEPS}); a change recompiles once (a short stall)",
                       in_range(1, MAX_NUM_STEPS), dynamic=True),
    # β beyond MAX_GUIDANCE_WEIGHT only adds numerical blow-up (the first step moves by β/n times the prefix error)
    "max_guidance_weight": Param(10.0, f"β, the guidance weight clip (in [0, {MAX_GUIDANCE_WEIGHT:g}]; no recompile)",
                                 guidance_weight_refusal, dynamic=True),
    "guidance_mode": Param("stop", "RTC guidance: stop (stop-gradient, no VJP) | full (VJP through the policy) | none "
                          "(naive async) | hard (hard mask) | trained (training-time RTC: the frozen prefix given "
                          "clean, no guidance; a policy trained for it) | bid (best of bid_samples unguided chunks "
                          "by backward coherence)", one_of(*GUIDANCE_MODES), dynamic=True),
    "bid_samples": Param(8, f"N: candidates per chunk in guidance_mode bid (1..{MAX_CANDIDATES}; the one nearest the "
                         "previous chunk's remaining actions is kept; N× the sampling cost; fixed at start)",
                         in_range(1, MAX_CANDIDATES)),
    "prefix_schedule": Param("exp", "soft mask between d and H - s: exp | linear | ones | zeros (hard mask)",
                             one_of(*PREFIX_SCHEDULES),
                             dynamic=True),
    "execution_horizon": dataclasses.replace(TIMING_PARAMS["execution_horizon"], dynamic=True),
    "inference_delay": Param("auto", "d: 'auto' (the executor's estimate) or a fixed int in [0, H - s]",
                             _delay_form, unit="action steps", dynamic=True, any_type=True),
    "prompt": Param("", "task instruction (also settable on rtc/prompt)", dynamic=True),
    "max_observation_age_s": Param(0.5, "wait instead of sampling from inputs received longer ago (> 0)",
                                   positive, unit="s", dynamic=True),
    "extra_latency_s": Param(0.0, "injected latency before publishing (>= 0, <= H·Δt; sim demo: d ≈ 16)",
                             non_negative, unit="s", dynamic=True),
    "publish_unguided": Param(False, "debug: also publish the unguided chunk (same noise) on rtc/chunk_unguided",
                              dynamic=True),
    "twin_snapshot": Param("", "policy twin | twin_expert: the world snapshot their privileged state comes from "
                           "(executor_node's twin_snapshot; '' = rtc_twin_<ROS_DOMAIN_ID>)"),
}


def executor_mismatches(ours: dict[str, Any], executor: dict[str, Any] | None) -> list[str]:
    """Why our H, s, Δt cannot work with the executor's (``chunk_timing.timing_mismatches`` on parameter values;
    empty: they fit, or the executor's are unknown)."""
    return timing_mismatches(ChunkTiming.from_values(ours), ChunkTiming.from_values(executor) if executor else None)


def validate_parameter(
    name: str, value: Any, *, horizon: int, dt_s: float | None = None, execution_horizon: int | None = None
) -> str | None:
    """Why ``value`` is refused for parameter ``name`` (None: accepted): the table's type and validator, then the
    bounds by the chunk timing: ``execution_horizon`` <= H, a fixed ``inference_delay`` <= H (and <= H - s given
    ``execution_horizon``), ``extra_latency_s`` <= H·Δt given ``dt_s``. Pure except that a
    ``compilation_cache_dir`` is created and test-written."""
    param = PARAMETERS.get(name)
    if param is None:
        return None
    if (reason := param.refusal(name, value)) is not None:
        return reason
    if name == "execution_horizon" and value > horizon:
        return f"execution_horizon must be an int in [1, H = {horizon}], got {value!r}"
    if name == "inference_delay":
        try:
            fixed = parse_inference_delay(value, horizon)
        except ValueError as exc:
            return str(exc)
        if fixed is not None and execution_horizon is not None and fixed > horizon - execution_horizon:
            return (f"inference_delay {fixed} must be <= H - s = {horizon - execution_horizon} "
                    "(RTC needs the frozen prefix inside the overlap; it would be clamped)")  # fmt: skip
    if name == "extra_latency_s" and dt_s is not None and value > horizon * dt_s:
        return f"extra_latency_s must be <= H·Δt = {horizon * dt_s:g} s (every chunk would be stale), got {value!r}"
    return None


def changes_refusal(changes: dict[str, Any], current: dict[str, Any], *, horizon: int) -> str | None:
    """Why a set of parameter changes is refused (None: accepted), each value checked against the parameters as they
    would be after it: ``extra_latency_s`` against H·Δt, a fixed ``inference_delay`` against H − s, and a new
    ``execution_horizon`` against the fixed ``inference_delay`` in force (else d would end up beyond H − s)."""
    after = {**current, **changes}
    rate = after.get("action_rate_hz")
    for name, value in changes.items():
        reason = validate_parameter(name, value, horizon=horizon, dt_s=1.0 / rate if rate else None,
                                    execution_horizon=after.get("execution_horizon"))  # fmt: skip
        if reason is None and name == "execution_horizon" and "inference_delay" in after:
            why = validate_parameter("inference_delay", after["inference_delay"], horizon=horizon,
                                     execution_horizon=value)  # fmt: skip
            reason = f"execution_horizon {value}: {why}" if why else None
        if reason is not None:
            return reason
    return None


def _refuse_pi05_settings(p: dict[str, Any]) -> None:
    """ValueError when a policy other than pi05 is given π0.5 settings it would ignore (a missing section is
    reported as such first)."""
    if p["policy_config"]:
        from rtc_controller.policy.pi05.policy_section import resolve_policy_config_path

        path = resolve_policy_config_path(str(p["policy_config"]))  # ConfigError: no such policy config
        if not path.is_file():
            raise ValueError(f"no such policy config {p['policy_config']!r} ({path} is not a file)")
        raise ValueError(f"policy_config is a π0.5 policy section; set policy: pi05 (got policy {p['policy']!r})")
    given = [k for k in ("checkpoint", "tokenizer_path") if p.get(k)]
    if given:
        raise ValueError(f"{' and '.join(given)} {'is a' if len(given) == 1 else 'are'} π0.5 setting(s) that policy "
                         f"{p['policy']!r} would ignore: set policy: pi05, or clear {', '.join(given)}")


def policy_section(p: dict[str, Any], horizon: int):
    """The π0.5 policy section named by ``policy_config`` (None when unset), cross-checked against the node's
    own parameters: a contradiction raises ValueError naming both values."""
    if p["policy"] != "pi05":
        _refuse_pi05_settings(p)
    if not p["policy_config"]:
        return None
    from rtc_controller.policy.pi05.policy_section import cross_check, load_policy_section

    section = load_policy_section(p["policy_config"], action_names=tuple(p["action_names"]))
    problems = cross_check(section, horizon=horizon, checkpoint=p["checkpoint"], tokenizer=p["tokenizer_path"],
                           num_steps=int(p["num_steps"]))
    if problems:
        raise ValueError(f"policy_config {p['policy_config']}: " + "; ".join(problems))
    return section


def policy_identity(p: dict[str, Any]):
    """The :class:`~rtc_controller.policy.identity.PolicyIdentity` of the node's policy parameters."""
    from rtc_controller.policy.identity import identity_for

    if p["policy"] != "pi05":
        return identity_for(p["policy"])
    return identity_for("pi05", policy_config=p["policy_config"], checkpoint=p["checkpoint"],
                        tokenizer=p["tokenizer_path"])  # fmt: skip


def camera_topics(p: dict[str, Any], section) -> tuple[tuple[str, ...], dict[str, str]]:
    """(model slots, slot -> topic): the section's camera mapping, else ``camera_slots`` on rtc/camera/<slot>."""
    slots = tuple(p["camera_slots"])
    if section is None or not section.cameras:
        return slots, {s: topics.camera_topic(s) for s in slots}
    if slots and set(slots) != set(section.camera_slots):
        raise ValueError(f"camera_slots {list(slots)} differ from the policy section's cameras "
                         f"{list(section.camera_slots)}")
    return section.camera_slots, section.camera_topics


def configured_camera_topics(p: dict[str, Any], *, compressed: bool = False) -> tuple[str, ...]:
    """The camera topics an inference node with parameters ``p`` subscribes (a parameter file's section: keys it
    leaves out have their defaults): its ``camera_slots`` on rtc/camera/<slot>, or its π0.5 policy section's
    cameras; ``…/compressed`` with ``use_compressed_images`` (or ``compressed``). What a recording must hold."""
    values = {k: p.get(k, spec.default) for k, spec in PARAMETERS.items()}
    section = None
    if values["policy_config"] and values["policy"] == "pi05":
        from rtc_controller.policy.pi05.policy_section import load_policy_section

        section = load_policy_section(values["policy_config"], action_names=tuple(values["action_names"]))
    slots, slot_topics = camera_topics(values, section)
    suffix = "/compressed" if compressed or values["use_compressed_images"] else ""
    return tuple(slot_topics[s] + suffix for s in slots)


def policy_params(p: dict[str, Any], *, section, horizon: int, dt_s: float, names: tuple[str, ...]) -> dict[str, Any]:
    """``make_policy``'s parameters for ``p["policy"]`` (``app.policies``' entry for it says which)."""
    return node_policy_params(p, section=section, horizon=horizon, dt_s=dt_s, names=names)
