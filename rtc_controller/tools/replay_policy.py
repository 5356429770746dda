"""Which policy ``rtc-replay`` uses: the one the bag records (``topics.POLICY_IDENTITY``) unless told otherwise.

Rules: a bag with an identity replays with that policy (its section, or its checkpoint and tokenizer); a policy
asked for on the command line that differs from it (name, section or checkpoint fingerprint) is refused unless
``allow_mismatch``; a bag without an identity replays with the asked-for policy, ``sim`` by default, and says so.
The twin's policies read the live twin's world and cannot replay offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtc_controller import topics
from rtc_controller.policy.identity import PolicyIdentity, identity_for, identity_mismatch

from rtc_controller.bags.bag_messages import read_prompts
from rtc_controller.bags.bag_reader import BagReader
from .replay_config import ReplayError

__all__ = ["ChosenPolicy", "choose_policy", "read_identity"]

LIVE_ONLY = ("twin", "twin_expert")  # policies whose state comes from the running twin


@dataclass(frozen=True)
class ChosenPolicy:
    name: str
    params: dict[str, Any]
    note: str  # one line for the report: where the policy came from


def read_identity(bag: BagReader, topic: str = topics.POLICY_IDENTITY) -> PolicyIdentity | None:
    """The last policy identity recorded in the bag (None: the bag has none)."""
    if bag.resolve(topic) is None:
        return None
    texts = [t for _, t in read_prompts(bag, topic)]
    return PolicyIdentity.from_json(texts[-1]) if texts else None


def _recorded_params(rec: PolicyIdentity) -> dict[str, Any]:
    if rec.policy_config:
        return {"policy_config": rec.policy_config}
    if rec.policy == "pi05":
        return {"checkpoint_dir": rec.checkpoint, "tokenizer_path": rec.tokenizer}
    return {}


def _used_identity(name: str, params: Mapping[str, Any]) -> PolicyIdentity:
    try:
        return identity_for(name, policy_config=str(params.get("policy_config", "")),
                            checkpoint=str(params.get("checkpoint_dir", "")),
                            tokenizer=str(params.get("tokenizer_path", "")))  # fmt: skip
    except (OSError, ValueError) as err:
        raise ReplayError(f"cannot read the policy to replay with: {err}") from err


def choose_policy(recorded: PolicyIdentity | None, *, asked: str | None, params: Mapping[str, Any],
                  allow_mismatch: bool = False) -> ChosenPolicy:  # fmt: skip
    """The policy to replay with (module docstring); ReplayError on a refused mismatch."""
    if recorded is None:
        name = asked or "sim"
        return ChosenPolicy(name, dict(params), f"the bag records no policy identity; replaying with policy {name}")
    chosen = asked is None and not params.get("policy_config") and not params.get("checkpoint_dir")
    name = recorded.policy if chosen else (asked or "sim")
    merged = {**_recorded_params(recorded), **params} if chosen else dict(params)
    if name in LIVE_ONLY and not allow_mismatch:
        raise ReplayError(f"the bag was recorded with policy {name!r}, which reads the live twin's world and cannot "
                          "replay offline; pass --policy sim --allow-policy-mismatch to replay with another policy")
    problems = identity_mismatch(recorded, _used_identity(name, merged)) if name not in LIVE_ONLY else [name]
    if problems and not allow_mismatch:
        raise ReplayError(f"the bag was recorded with {recorded.describe()}; " + "; ".join(problems)
                          + " (pass --allow-policy-mismatch to replay anyway)")  # fmt: skip
    how = "as recorded" if chosen and not problems else f"NOT the recorded {recorded.describe()}"
    return ChosenPolicy(name, merged, f"replaying with policy {name} ({how})")
