"""Which policy made a recording: its name, policy section and a fingerprint of its checkpoint (ROS-free).

The inference node publishes :class:`PolicyIdentity` once, latched, on ``topics.POLICY_IDENTITY`` (JSON in a
``std_msgs/String``); ``rtc-record`` records it with the other topics and ``rtc-replay`` replays with the same
policy unless told otherwise (:func:`identity_mismatch`).

The checkpoint fingerprint is a SHA-256 over every file's relative path and size, plus the contents of the small
files (metadata, manifests, norm stats); the same checkpoint copied elsewhere keeps its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PolicyIdentity", "checkpoint_fingerprint", "file_fingerprint", "identity_for", "identity_mismatch"]

SMALL_FILE_BYTES = 1 << 20  # files up to this size are hashed whole; larger ones by path and size
FINGERPRINT_CHARS = 16


def _digest(h: Any) -> str:
    return h.hexdigest()[:FINGERPRINT_CHARS]


def checkpoint_fingerprint(directory: str | pathlib.Path) -> str:
    """Fingerprint of a checkpoint directory ('' when it is not a directory), e.g. ``'3f9a0c…'``."""
    root = pathlib.Path(directory).expanduser()
    if not str(directory) or not root.is_dir():
        return ""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        size = path.stat().st_size
        h.update(f"{path.relative_to(root).as_posix()}\0{size}\0".encode())
        if size <= SMALL_FILE_BYTES:
            h.update(path.read_bytes())
    return _digest(h)


def file_fingerprint(path: str | pathlib.Path) -> str:
    """Fingerprint of one file's contents ('' when it is not a file): the policy section."""
    p = pathlib.Path(path).expanduser()
    return _digest(hashlib.sha256(p.read_bytes())) if str(path) and p.is_file() else ""


@dataclass(frozen=True)
class PolicyIdentity:
    """The policy name, its section (path as given and content fingerprint) and the checkpoint (path, fingerprint)."""

    policy: str
    policy_config: str = ""
    section_fingerprint: str = ""
    checkpoint: str = ""
    tokenizer: str = ""
    checkpoint_fingerprint: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PolicyIdentity:
        """Parse :meth:`to_json`'s output; unknown keys are ignored, ValueError when it is not an identity."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("policy"), str):
            raise ValueError(f"not a policy identity: {text[:80]!r}")
        known = cls.__dataclass_fields__
        return cls(**{k: str(v) for k, v in data.items() if k in known})

    def describe(self) -> str:
        """One line, e.g. ``pi05 (section models/twin_pi05/policy.yaml, checkpoint 3f9a0c…)``."""
        parts = [f"section {self.policy_config}"] if self.policy_config else []
        if self.checkpoint_fingerprint:
            parts.append(f"checkpoint {self.checkpoint or '?'} [{self.checkpoint_fingerprint}]")
        return self.policy + (f" ({', '.join(parts)})" if parts else "")


def identity_mismatch(recorded: PolicyIdentity, used: PolicyIdentity) -> list[str]:
    """How ``used`` differs from ``recorded`` (empty: the same policy). Fingerprints are compared where both are
    known; paths are not (a bag replays on another machine)."""
    out = []
    if recorded.policy != used.policy:
        out.append(f"policy {used.policy!r} != recorded {recorded.policy!r}")
    for field, what in (("section_fingerprint", "policy section"), ("checkpoint_fingerprint", "checkpoint")):
        a, b = getattr(recorded, field), getattr(used, field)
        if a and b and a != b:
            out.append(f"{what} fingerprint {b} != recorded {a}")
        elif a and not b:
            out.append(f"the recorded {what} (fingerprint {a}) is not available here")
    return out


def identity_for(policy: str, *, policy_config: str = "", checkpoint: str = "", tokenizer: str = "") -> PolicyIdentity:
    """The identity of ``policy`` built from a policy section (its checkpoint) or from a checkpoint directory;
    ConfigError (a ValueError) when the section cannot be read."""
    if policy_config:
        from rtc_controller.policy.pi05.policy_section import load_policy_section, resolve_policy_config_path

        section = load_policy_section(policy_config)
        return PolicyIdentity(
            policy, str(policy_config), file_fingerprint(resolve_policy_config_path(str(policy_config))),
            section.checkpoint_dir, section.tokenizer_path, checkpoint_fingerprint(section.checkpoint_dir),
        )  # fmt: skip
    return PolicyIdentity(policy, checkpoint=str(checkpoint), tokenizer=str(tokenizer),
                          checkpoint_fingerprint=checkpoint_fingerprint(checkpoint) if checkpoint else "")  # fmt: skip
