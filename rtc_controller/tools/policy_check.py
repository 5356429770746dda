"""rtc-policy-check: prove that the inference node's π0.5 path gives openpi's actions before the robot moves.

For each parity record (``parity_io``: an observation, the noise openpi started from, openpi's actions) it runs
the node's exact policy path — ``Pi05Policy`` from the policy section, ``ChunkSampler.sample`` with guidance off
and that noise — and prints max |Δ| per action dimension against openpi's actions (mapped to the executor's names
by the section's ``actions`` segments), relative to the action range (norm stats q99 − q01, or 4·std without
quantiles; a quaternion-mapped rotation dim uses π rad). Pass: every dim within ``--threshold`` (default 3e-2 for
bfloat16, 1e-3 for float32).

    rtc-policy-check --config config/rig.yaml --bag bags/run1 --export parity/       # records for the lab
    # ... the lab's openpi server fills in "actions" (README: "Prove parity before the robot moves") ...
    rtc-policy-check --config config/rig.yaml --npz parity/*.npz                      # compare

Exit status: 0 pass (or exported), 1 parity failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from rtc_controller.config_check import ConfigError, check_known_keys, load_yaml
from rtc_controller.policy.base import Observation
from rtc_controller.tools.parity_io import ParityInputError, ParityRecord, load_record, observations_from_bag, save_record

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_THRESHOLD = {"bfloat16": 3e-2, "float32": 1e-3}
ROTATION_RANGE_RAD = math.pi  # range of a rotation-vector dim decoded from a quaternion
STD_RANGE = 4.0  # without quantiles: the range is 4 standard deviations
NODE = "inference_node"


@dataclass(frozen=True)
class DimResult:
    name: str
    max_abs: float
    span: float

    @property
    def relative(self) -> float:
        return self.max_abs / self.span if self.span > 0 else self.max_abs


@dataclass(frozen=True)
class RecordResult:
    source: str
    dims: tuple[DimResult, ...]
    actions: np.ndarray  # ours [H, D]
    reference: np.ndarray  # openpi's, mapped [H, D]

    def worst(self) -> DimResult:
        return max(self.dims, key=lambda d: d.relative)


def action_spans(policy) -> np.ndarray:
    """Range per executor action dim [D] (module docstring) from the checkpoint's action norm stats."""
    stats = policy._action_stats
    span = (stats.q99 - stats.q01) if stats.q01 is not None and stats.q99 is not None else STD_RANGE * stats.std
    out = np.zeros(len(policy.action_names))
    index = {n: i for i, n in enumerate(policy.action_names)}
    start = 0
    for seg in policy.action_map.segments:
        part = span[start:start + seg.dim]
        if seg.representation == "identity":
            out[[index[n] for n in seg.names]] = part
        elif seg.representation.startswith("gripper"):
            lo, hi = seg.range_m
            out[index[seg.names[0]]] = part[0] * (hi - lo)
        elif seg.representation.startswith("quat"):
            out[[index[n] for n in seg.names]] = ROTATION_RANGE_RAD
        start += seg.dim
    return out


def _observation_for(policy, record: ParityRecord) -> Observation:
    index = {n: i for i, n in enumerate(record.state_names)}
    missing = [n for n in policy.action_names if n not in index]
    if missing:
        raise ParityInputError(f"{record.source}: state_names lack the executor's {missing}")
    obs = record.observation
    state = np.asarray(obs.state)[[index[n] for n in policy.action_names]]
    return Observation(state=state, stamp_s=obs.stamp_s, prompt=obs.prompt, images=dict(obs.images))


def check_record(policy, sampler, record: ParityRecord) -> RecordResult:
    """Run the node's path on one record and compare with its openpi actions."""
    import jax

    from rtc_controller.policy.chunk_sampler import GuidanceSettings

    if record.actions is None:
        raise ParityInputError(f"{record.source}: no 'actions' (openpi's output) to compare with")
    h, dm = record.noise.shape
    if h != policy.horizon or dm != policy.model_action_dim:
        raise ParityInputError(f"{record.source}: noise is [{h}, {dm}] but the policy section's action_horizon is "
                               f"{policy.horizon} and the checkpoint's action_dim {policy.model_action_dim}")
    if record.actions.ndim != 2 or record.actions.shape[0] != h or record.actions.shape[1] < policy.action_map.dim:
        raise ParityInputError(f"{record.source}: actions are {list(record.actions.shape)}, expected [{h}, >= "
                               f"{policy.action_map.dim}] (the section's actions vector)")
    obs = _observation_for(policy, record)
    result = sampler.sample(obs, previous=None, settings=GuidanceSettings(0, 1, mode="none"),
                            key=jax.random.key(0), noise=record.noise[None])
    reference = policy.action_map.decode(record.actions, policy.action_names)
    delta = np.abs(result.actions - reference).max(axis=0)
    spans = action_spans(policy)
    dims = tuple(DimResult(n, float(d), float(s)) for n, d, s in zip(policy.action_names, delta, spans))
    return RecordResult(record.source, dims, result.actions, reference)


def format_report(results: Sequence[RecordResult], threshold: float) -> str:
    names = [d.name for d in results[0].dims]
    worst_abs = np.max([[d.max_abs for d in r.dims] for r in results], axis=0)
    worst_rel = np.max([[d.relative for d in r.dims] for r in results], axis=0)
    spans = [d.span for d in results[0].dims]
    width = max(len(n) for n in names)
    lines = [f"{'action':<{width}}  {'max |Δ|':>10}  {'range':>9}  {'max |Δ|/range':>13}  ok"]
    for n, a, s, r in zip(names, worst_abs, spans, worst_rel):
        lines.append(f"{n:<{width}}  {a:>10.3g}  {s:>9.3g}  {r:>13.3g}  {'yes' if r <= threshold else 'NO'}")
    return "\n".join(lines)


def _node_section(path: pathlib.Path) -> dict[str, Any]:
    raw = load_yaml(path)
    params = (raw or {}).get(NODE, {}).get("ros__parameters") if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: no '{NODE}: ros__parameters:' section")
    return params


def load_policy(ns: argparse.Namespace):
    """The node's π0.5 policy from --config (its inference_node section) and/or --policy-config, with --set."""
    from rtc_controller.policy.pi05 import Pi05Policy, load_policy_section
    from rtc_controller.policy.pi05.policy_section import Pi05PolicyConfig

    node = _node_section(ns.config) if ns.config else {}
    section = ns.policy_config or node.get("policy_config")
    if not section:
        where = f"{ns.config}'s inference_node has policy {node.get('policy', 'sim')!r} and no policy_config" \
            if ns.config else "no --config"
        raise ConfigError(f"no policy section ({where}): rtc-policy-check checks a π0.5 policy section; pass "
                          "--policy-config <config/policy name or path>, or a --config with policy: pi05 and "
                          "policy_config")
    overrides: dict[str, Any] = dict(ns.set)
    check_known_keys(overrides, Pi05PolicyConfig.__dataclass_fields__, where="--set")
    if node.get("action_names") and "action_names" not in overrides:
        overrides["action_names"] = tuple(node["action_names"])
    for key in ("action_names", "prompt_buckets"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    return Pi05Policy(load_policy_section(section, **overrides)), node


def _key_value(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-policy-check", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=pathlib.Path, help="the node's parameter file (its inference_node section)")
    p.add_argument("--policy-config", help="policy section (path or config/policy name); overrides --config's")
    p.add_argument("--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="override a policy-section field, e.g. dtype=float32 or checkpoint_dir=/ckpt (repeatable)")
    p.add_argument("--npz", type=pathlib.Path, nargs="+", help="parity records with openpi's actions to compare")
    p.add_argument("--bag", type=pathlib.Path, help="a recorded bag: observations at its chunks' t_obs")
    p.add_argument("--export", type=pathlib.Path, metavar="DIR", help="with --bag: write records (no actions) here")
    p.add_argument("--max-observations", type=int, default=4, help="observations taken from the bag (default 4)")
    p.add_argument("--seed", type=int, default=0, help="noise seed of exported records (default 0)")
    p.add_argument("--threshold", type=float, help="pass if max |Δ|/range <= this (default 3e-2 bf16, 1e-3 f32)")
    p.add_argument("--json", type=pathlib.Path, help="also write the per-dim results as JSON")
    return p


def export_records(policy, ns: argparse.Namespace, out: TextIO) -> int:
    observations = observations_from_bag(ns.bag, names=policy.action_names, cameras=policy.config.camera_topics or None,
                                         max_observations=ns.max_observations)
    rng = np.random.default_rng(ns.seed)
    wanted = sorted(policy.config.camera_slots)
    for i, obs in enumerate(observations):
        missing = [slot for slot in wanted if slot not in obs.images] or ([] if obs.images else ["(any)"])
        if missing:
            print(f"rtc-policy-check: warning: observation {i} (t_obs {obs.stamp_s:.3f} s) has no frame for camera(s) "
                  f"{missing}: the bag lacks their topics (rtc-record --config <the rig's file> records them)",
                  file=sys.stderr)  # fmt: skip
        noise = rng.standard_normal((policy.horizon, policy.model_action_dim)).astype(np.float32)
        path = save_record(ns.export / f"obs_{i:03d}.npz", ParityRecord(obs, policy.action_names, noise))
        print(f"wrote {path} (t_obs {obs.stamp_s:.3f} s, cameras {sorted(obs.images)})", file=out)
    return EXIT_OK


def run(ns: argparse.Namespace, out: TextIO) -> int:
    from rtc_controller.policy.chunk_sampler import ChunkSampler

    policy, _ = load_policy(ns)
    if ns.bag and ns.export:
        return export_records(policy, ns, out)
    if not ns.npz:
        raise ParityInputError("nothing to compare: pass --npz records with openpi's actions (or --bag with --export)")
    threshold = ns.threshold if ns.threshold is not None else DEFAULT_THRESHOLD[policy.config.dtype]
    sampler = ChunkSampler(policy, dt_s=1.0, num_steps=policy.num_steps)  # Δt plays no part without guidance
    results = [check_record(policy, sampler, load_record(p)) for p in ns.npz]
    print(f"rtc-policy-check: {len(results)} record(s), {policy.config.dtype}, {policy.num_steps} steps, guidance off",
          file=out)
    print(format_report(results, threshold), file=out)
    worst = max((r.worst() for r in results), key=lambda d: d.relative)
    ok = worst.relative <= threshold
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: worst max |Δ|/range {worst.relative:.3g} on {worst.name} (threshold {threshold:g})", file=out)
    if ns.json:
        ns.json.write_text(json.dumps({"pass": ok, "threshold": threshold, "records": [
            {"source": r.source, "dims": [{"name": d.name, "max_abs": d.max_abs, "range": d.span} for d in r.dims]}
            for r in results]}, indent=2))
    return EXIT_OK if ok else EXIT_FAIL


def main(args: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Console script ``rtc-policy-check`` (exit 0 pass, 1 parity failed, 2 bad input)."""
    ns = build_parser().parse_args(args)
    out = out or sys.stdout
    try:
        return run(ns, out)
    except (ConfigError, ParityInputError, ValueError, OSError) as err:
        print(f"rtc-policy-check: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
