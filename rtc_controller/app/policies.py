"""Build a FlowPolicy by name: ``sim`` (the built-in simulation scene), ``pi05`` (π0.5, openpi checkpoint), or the
MuJoCo twin's ``twin`` (mixture over the expert's bin choices) and ``twin_expert`` (the scripted expert).

The π0.5 module is imported lazily, so the simulated rig never pulls in its dependencies.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from rtc_controller.policy.base import FlowPolicy

PolicyName = Literal["sim", "pi05", "twin", "twin_expert"]
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)


def make_policy(name: PolicyName, **params: Any) -> FlowPolicy:
    """A policy by name.

    sim: ``params`` are ``SimPolicyConfig`` fields (e.g. ``horizon=100, dt_s=0.02``).
    twin, twin_expert: ``horizon``, ``dt_s``, ``names`` and optionally ``source`` (privileged state; default: the
    world snapshot of the ``mujoco`` driver on this machine, ``snapshot=<name>`` for another).
    pi05: ``params`` are ``Pi05PolicyConfig`` fields (``checkpoint_dir``, ``tokenizer_path`` required;
    e.g. ``action_horizon=50``, ``action_names=…``, ``delta_action_mask=…``), or ``policy_config=<policy section
    file or config/policy name>`` with other fields overriding the file's.
    """
    if name == "sim":
        from rtc_controller.policy.sim_policy import sim_policy_from_params

        return sim_policy_from_params(params)
    if name in ("twin", "twin_expert"):
        from rtc_controller.sim.twin_policy import twin_policy_from_params

        return twin_policy_from_params(params, expert_only=name == "twin_expert")
    if name == "pi05":
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
    raise ValueError(f"unknown policy {name!r}; expected one of {POLICY_NAMES}")
