"""The policies the nodes can run, in one registry: ``sim`` (the built-in simulation scene), ``pi05`` (π0.5, an
openpi checkpoint), and the MuJoCo twin's ``twin`` (mixture over the expert's bin choices) and ``twin_expert``
(the scripted expert).

Each :class:`PolicyEntry` says how the policy is built (:func:`make_policy`), which of the inference node's
parameters it takes (:func:`node_policy_params`), and what it needs: the twin policies read the twin world's
privileged state (a snapshot, or the in-process world in ``rtc-eval``); ``sim`` does not act in the twin. Nothing
else dispatches on a policy's name. The π0.5 module is imported lazily, so the simulated rig never pulls in its
dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from rtc_controller.policy.base import FlowPolicy

__all__ = ["POLICIES", "POLICY_NAMES", "PolicyEntry", "PolicyName", "entry", "make_policy", "node_policy_params"]

PolicyName = Literal["sim", "pi05", "twin", "twin_expert"]


@dataclass(frozen=True)
class NodeShape:
    """What the inference node gives every policy: H [action steps], Δt [s], the action names, its π0.5 policy
    section (None: none) and its parameter values."""

    p: Mapping[str, Any]
    section: Any
    horizon: int
    dt_s: float
    names: tuple[str, ...]


@dataclass(frozen=True)
class PolicyEntry:
    """``build(params)``: the policy; ``node_params(shape)``: ``build``'s parameters from the inference node's;
    ``privileged_state``: reads the twin world's state (``snapshot=`` or ``source=``); ``runs_on_twin``: acts in
    the MuJoCo twin (``rtc-eval``)."""

    build: Callable[[dict[str, Any]], FlowPolicy]
    node_params: Callable[[NodeShape], dict[str, Any]]
    privileged_state: bool = False
    runs_on_twin: bool = True


def _sim(params: dict[str, Any]) -> FlowPolicy:
    from rtc_controller.policy.sim_policy import sim_policy_from_params

    return sim_policy_from_params(params)


def _twin(expert_only: bool) -> Callable[[dict[str, Any]], FlowPolicy]:
    def build(params: dict[str, Any]) -> FlowPolicy:
        from rtc_controller.sim.twin_policy import twin_policy_from_params

        return twin_policy_from_params(params, expert_only=expert_only)

    return build


def _pi05(params: dict[str, Any]) -> FlowPolicy:
    try:
        from rtc_controller.policy.pi05 import Pi05Policy, Pi05PolicyConfig
    except ImportError as exc:
        raise RuntimeError(
            f"policy 'pi05' is not available: cannot import rtc_controller.policy.pi05 ({exc}); "
            "install the extra with `pip install -e .[pi05]` or use policy 'sim'"
        ) from exc
    known = set(Pi05PolicyConfig.__dataclass_fields__)
    unknown = sorted(set(params) - known - {"policy_config"})
    if unknown:
        raise ValueError(f"unknown pi05 parameters {unknown}; known: {sorted(known | {'policy_config'})}")
    if params.get("policy_config"):
        from rtc_controller.policy.pi05.policy_section import load_policy_section

        rest = {k: v for k, v in params.items() if k != "policy_config"}
        return Pi05Policy(load_policy_section(params["policy_config"], **rest))
    if "checkpoint_dir" not in params or "tokenizer_path" not in params:
        raise ValueError("policy 'pi05' needs policy_config=<policy section>, or checkpoint_dir=<openpi "
                         "checkpoint> and tokenizer_path=<.model>")
    return Pi05Policy(Pi05PolicyConfig(**{k: v for k, v in params.items() if k != "policy_config"}))


def _shape_params(n: NodeShape) -> dict[str, Any]:
    return {"horizon": n.horizon, "dt_s": n.dt_s, "names": n.names}


def _twin_params(n: NodeShape) -> dict[str, Any]:
    return _shape_params(n) | {"snapshot": n.p["twin_snapshot"]}


def _pi05_params(n: NodeShape) -> dict[str, Any]:
    if n.section is not None:
        return {"policy_config": n.p["policy_config"], "action_names": n.names}
    return {"checkpoint_dir": n.p["checkpoint"], "tokenizer_path": n.p["tokenizer_path"], "action_horizon": n.horizon,
            "action_names": n.names}  # fmt: skip


POLICIES: dict[str, PolicyEntry] = {
    "sim": PolicyEntry(_sim, _shape_params, runs_on_twin=False),
    "pi05": PolicyEntry(_pi05, _pi05_params),
    "twin": PolicyEntry(_twin(expert_only=False), _twin_params, privileged_state=True),
    "twin_expert": PolicyEntry(_twin(expert_only=True), _twin_params, privileged_state=True),
}
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)
assert set(POLICY_NAMES) == set(POLICIES), "PolicyName and POLICIES name the same policies"


def entry(name: str) -> PolicyEntry:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {POLICY_NAMES}")
    return POLICIES[name]


def make_policy(name: PolicyName, **params: Any) -> FlowPolicy:
    """A policy by name.

    sim: ``params`` are ``SimPolicyConfig`` fields (e.g. ``horizon=100, dt_s=0.02``).
    twin, twin_expert: ``horizon``, ``dt_s``, ``names`` and optionally ``source`` (privileged state; default: the
    world snapshot of the ``mujoco`` driver on this machine, ``snapshot=<name>`` for another).
    pi05: ``params`` are ``Pi05PolicyConfig`` fields (``checkpoint_dir``, ``tokenizer_path`` required;
    e.g. ``action_horizon=50``, ``action_names=…``, ``delta_action_mask=…``), or ``policy_config=<policy section
    file or config/policy name>`` with other fields overriding the file's.
    """
    return entry(name).build(params)


def node_policy_params(p: Mapping[str, Any], *, section: Any, horizon: int, dt_s: float,
                       names: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    """``make_policy``'s parameters for the inference node's values ``p`` (its ``policy`` names the entry)."""
    return entry(p["policy"]).node_params(NodeShape(p, section, horizon, dt_s, names))
