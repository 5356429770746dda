"""The inference node's parameter table and checks (ROS-free; ``inference_node`` declares and wires them).

Every parameter with its default, description and whether it is fixed at start-up (``config/*.yaml`` documents the
same names); :func:`validate_parameter`, the pure check the on-set callback runs; and the π0.5 policy section and
camera topics the parameters name. Times [s], Δt = 1/``action_rate_hz``, H and s [action steps].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.policy.compilation_cache import cache_dir_refusal
from rtc_controller.policy.inference_loop import parse_inference_delay
from rtc_controller.app.policies import POLICY_NAMES
from rtc_controller.rtc import GUIDANCE_MODES, MAX_GUIDANCE_WEIGHT, PREFIX_SCHEDULES, guidance_weight_refusal

__all__ = [
    "MAX_GUIDANCE_WEIGHT",
    "MAX_NUM_STEPS",
    "PARAMETERS",
    "ParamSpec",
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
# β beyond this only adds numerical blow-up (the first step moves by β/n times the prefix error; 1e300 overflowed
# float32 to inf/NaN); the seed and rtc-replay sweep up to 100.


@dataclass(frozen=True)
class ParamSpec:
    default: Any
    description: str
    read_only: bool = False  # fixed at start-up (the policy, its shapes, the subscriptions)
    dynamic_typing: bool = False


# Every parameter of the node (name -> default, description); config/*.yaml documents the same names.
PARAMETERS: dict[str, ParamSpec] = {
    "policy": ParamSpec("sim", f"flow policy: one of {POLICY_NAMES}", read_only=True),
    "policy_config": ParamSpec("", "π0.5 policy section: YAML path or a name under config/policy/ (checkpoint, "
                               "tokenizer, horizon, state/action mapping, camera topics; policy pi05)", read_only=True),
    "checkpoint": ParamSpec("", "π0.5 openpi checkpoint directory with params/ and assets/ (policy pi05)", read_only=True),
    "tokenizer_path": ParamSpec("", "PaliGemma SentencePiece model file (policy pi05)", read_only=True),
    "horizon": ParamSpec(100, "H, actions per chunk (must match the policy)", read_only=True),
    "action_rate_hz": ParamSpec(50.0, "1/Δt, action steps per second (same as the executor)", read_only=True),
    "action_names": ParamSpec(list(action_names("cartesian")), "chunk dimension names (the executor's)", read_only=True),
    "camera_slots": ParamSpec((), "model camera slots, each subscribed as rtc/camera/<slot>", read_only=True),
    "use_compressed_images": ParamSpec(False, "subscribe rtc/camera/<slot>/compressed (CompressedImage)", read_only=True),
    "chunk_history": ParamSpec(8, "published chunks kept to guide toward the executor's active one", read_only=True),
    "seed": ParamSpec(0, "PRNG seed of the sampling noise", read_only=True),
    "compilation_cache_dir": ParamSpec("", "JAX persistent compilation cache: a writable directory ('' = "
                                    "off; ~ expanded; entries under <dir>/jax<version>-<backend>-<model>)", read_only=True),
    "num_steps": ParamSpec(10, f"denoising steps n (1..{MAX_NUM_STEPS}); a change recompiles once"),
    "max_guidance_weight": ParamSpec(10.0, f"β, the guidance weight clip (in [0, {MAX_GUIDANCE_WEIGHT:g}])"),
    "guidance_mode": ParamSpec("stop", f"RTC guidance: one of {GUIDANCE_MODES}"),
    "prefix_schedule": ParamSpec("exp", f"soft-mask schedule: one of {PREFIX_SCHEDULES}"),
    "execution_horizon": ParamSpec(50, "s, action steps between chunks (1..H); the weights end at H - s"),
    "inference_delay": ParamSpec("auto", "d: 'auto' (the executor's estimate) or a fixed int in [0, H]", dynamic_typing=True),
    "prompt": ParamSpec("", "task instruction (also settable on rtc/prompt)"),
    "max_observation_age_s": ParamSpec(0.5, "wait instead of sampling from inputs received longer ago [s] (> 0)"),
    "extra_latency_s": ParamSpec(0.0, "injected latency before publishing [s] (>= 0; sim demo: d ≈ 16)"),
    "publish_unguided": ParamSpec(False, "debug: also publish the unguided chunk from the same noise"),
    "twin_snapshot": ParamSpec("", "policy twin | twin_expert: the world snapshot their privileged state comes from "
                               "(executor_node's twin_snapshot; '' = rtc_twin_<ROS_DOMAIN_ID>)", read_only=True),
}


# The settings the inference node and the executor must agree on (H, s, Δt).
SHARED_WITH_EXECUTOR = ("horizon", "execution_horizon", "action_rate_hz")


def executor_mismatches(ours: dict[str, Any], executor: dict[str, Any] | None) -> list[str]:
    """Why our H, s, Δt cannot work with the executor's (empty: they fit, or the executor's are unknown). The one
    rule behind the inference node's pause and ``rtc-bringup``'s warnings."""
    if not executor:
        return []
    out = []
    if int(ours["execution_horizon"]) != int(executor["execution_horizon"]):
        out.append(f"execution_horizon {ours['execution_horizon']} != executor_node's {executor['execution_horizon']} "
                   "(the executor clamps d to its H - s)")  # fmt: skip
    if int(ours["horizon"]) > int(executor["horizon"]):
        out.append(f"horizon {ours['horizon']} > executor_node's {executor['horizon']}: it would reject every chunk")
    if abs(float(ours["action_rate_hz"]) - float(executor["action_rate_hz"])) > 1e-9:
        out.append(f"action_rate_hz {ours['action_rate_hz']} != executor_node's {executor['action_rate_hz']}")
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def validate_parameter(
    name: str, value: Any, *, horizon: int, dt_s: float | None = None, execution_horizon: int | None = None
) -> str | None:
    """Why ``value`` is refused for parameter ``name`` (None: accepted). Shared with the tests; pure except that a
    ``compilation_cache_dir`` is created and test-written.
    ``dt_s`` bounds ``extra_latency_s`` by H·Δt; ``execution_horizon`` bounds a fixed ``inference_delay`` by H − s."""
    if name == "compilation_cache_dir":
        return cache_dir_refusal(value, name)
    if name == "policy" and value not in POLICY_NAMES:
        return f"policy must be one of {POLICY_NAMES}, got {value!r}"
    if name == "horizon" and not (_is_int(value) and value >= 2):
        return f"horizon must be an int >= 2, got {value!r}"
    if name == "action_rate_hz" and not (_is_number(value) and value > 0):
        return f"action_rate_hz must be finite and > 0, got {value!r}"
    if name == "num_steps" and not (_is_int(value) and 1 <= value <= MAX_NUM_STEPS):
        return f"num_steps must be an int in [1, {MAX_NUM_STEPS}], got {value!r}"
    if name == "max_guidance_weight" and (why := guidance_weight_refusal(value)) is not None:
        return why
    if name == "guidance_mode" and value not in GUIDANCE_MODES:
        return f"guidance_mode must be one of {GUIDANCE_MODES}, got {value!r}"
    if name == "prefix_schedule" and value not in PREFIX_SCHEDULES:
        return f"prefix_schedule must be one of {PREFIX_SCHEDULES}, got {value!r}"
    if name == "execution_horizon" and not (_is_int(value) and 1 <= value <= horizon):
        return f"execution_horizon must be an int in [1, H = {horizon}], got {value!r}"
    if name == "inference_delay":
        try:
            fixed = parse_inference_delay(value, horizon)
        except ValueError as exc:
            return str(exc)
        if fixed is not None and execution_horizon is not None and fixed > horizon - execution_horizon:
            return (f"inference_delay {fixed} must be <= H - s = {horizon - execution_horizon} "
                    "(RTC needs the frozen prefix inside the overlap; it would be clamped)")  # fmt: skip
    if name == "max_observation_age_s" and not (_is_number(value) and value > 0):
        return f"max_observation_age_s must be finite and > 0, got {value!r}"
    if name == "extra_latency_s" and not (_is_number(value) and value >= 0):
        return f"extra_latency_s must be finite and >= 0, got {value!r}"
    if name == "extra_latency_s" and dt_s is not None and value > horizon * dt_s:
        return f"extra_latency_s must be <= H·Δt = {horizon * dt_s:g} s (every chunk would be stale), got {value!r}"
    if name == "chunk_history" and not (_is_int(value) and value >= 1):
        return f"chunk_history must be an int >= 1, got {value!r}"
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
    """``make_policy``'s parameters for ``p["policy"]``: the policy section's, π0.5's checkpoint and tokenizer, or
    the sim and twin policies' shape (and the twin's world snapshot)."""
    if section is not None:
        return {"policy_config": p["policy_config"], "action_names": names}
    if p["policy"] == "pi05":
        return {
            "checkpoint_dir": p["checkpoint"],
            "tokenizer_path": p["tokenizer_path"],
            "action_horizon": horizon,
            "action_names": names,
        }
    params = {"horizon": horizon, "dt_s": dt_s, "names": names}
    if p["policy"] in ("twin", "twin_expert"):
        params["snapshot"] = p["twin_snapshot"]
    return params
