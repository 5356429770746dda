"""The ``rtc-replay`` command line: options -> :class:`ReplayConfig` -> :func:`run_replay`.

Exit status: 0 on success, 2 on bad input (missing topic, unknown message type, empty time range, bad option);
the reason is one line on stderr, ``rtc-replay: error: …``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtc_controller import topics
from rtc_controller.rtc import PREFIX_SCHEDULES

from . import metrics as M
from rtc_controller.bags.bag_reader import BagError, BagReader
from .replay import run_replay
from .replay_policy import choose_policy, read_identity
from .replay_config import DEFAULT_BETAS, DEFAULT_FIGURES, ReplayConfig, ReplayError

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main", "section_cameras"]

EXIT_BAD_INPUT = 2
# --policy pi05: CLI flag -> the make_policy parameter it sets
PI05_REQUIRED = {"--checkpoint DIR": "checkpoint_dir", "--tokenizer PATH": "tokenizer_path"}


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _switches(text: str) -> str | tuple[int, ...]:
    if text == "all":
        return "all"
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected 'all' or comma-separated indices, got {text!r}") from err


def _policy_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    return key, yaml.safe_load(value)  # numbers, booleans and lists as YAML reads them


def _camera(text: str) -> tuple[str, str]:
    slot, sep, topic = text.partition("=")
    if not sep or not slot or not topic:
        raise argparse.ArgumentTypeError(f"expected SLOT=TOPIC, got {text!r}")
    return slot, topic


def section_cameras(policy_config: str) -> dict[str, str] | None:
    """slot -> topic of a π0.5 policy section's cameras (None: the section lists none)."""
    from rtc_controller.policy.pi05.policy_section import load_policy_section

    return load_policy_section(policy_config).camera_topics or None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rtc-replay",
        description="Re-sample recorded chunk switches offline for several guidance modes and β; "
        "plot each switch, write metrics.csv and recommend β.",
    )
    p.add_argument("bag", type=Path, help="rosbag2 directory (MCAP or SQLite3)")
    p.add_argument("--output", "-o", type=Path, default=Path("out/replay"), help="output folder (default out/replay)")
    p.add_argument("--policy", help="policy name: sim or pi05 (default: the policy the bag records, else sim)")
    p.add_argument("--allow-policy-mismatch", action="store_true",
                   help="replay with a policy other than the one the bag records")
    p.add_argument("--checkpoint", type=Path, help="π0.5 openpi checkpoint directory (with --policy pi05)")
    p.add_argument("--tokenizer", type=Path, help="PaliGemma SentencePiece model, paligemma_tokenizer.model (with --policy pi05)")
    p.add_argument("--policy-config", help="π0.5 policy section (YAML path or a name under config/policy/); implies "
                   "--policy pi05 and sets the checkpoint, tokenizer, horizon, mappings and camera topics")
    p.add_argument("--policy-param", type=_policy_param, action="append", default=[], metavar="KEY=VALUE",
                   help="extra make_policy parameter (repeatable; YAML value), e.g. asset_id=trossen")  # fmt: skip
    p.add_argument("--modes", type=_names, default=("none", "stop", "full"), help="guidance modes (default none,stop,full)")
    p.add_argument("--beta", type=_floats, default=DEFAULT_BETAS, help="max guidance weights β (default 1,5,10,100)")
    p.add_argument("--delay", type=int, help="d [action steps] for every switch (default: from each chunk's frame_id)")
    p.add_argument("--execution-horizon", type=int, help="s [action steps] (default: inferred from the chunk cadence)")
    p.add_argument("--schedule", default="exp", choices=PREFIX_SCHEDULES, help="prefix weight schedule (default exp)")
    p.add_argument("--num-steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--switches", type=_switches, default="all", help="'all' or chunk indices, e.g. 3,7,12 (default all)")
    p.add_argument("--max-switches", type=int, help="replay at most N switches, evenly spread")
    p.add_argument("--figures", type=int, default=DEFAULT_FIGURES, help=f"switches to plot (default {DEFAULT_FIGURES})")
    p.add_argument("--start", type=float, help="start [s] after the bag's first message")
    p.add_argument("--end", type=float, help="end [s] after the bag's first message")
    p.add_argument("--chunk-topic", default=topics.CHUNK)
    p.add_argument("--state-topic", default=topics.ROBOT_STATE)
    p.add_argument("--prompt-topic", default=topics.PROMPT)
    p.add_argument("--camera", type=_camera, action="append", help="SLOT=TOPIC (repeatable; default: every rtc/camera/<slot>)")
    p.add_argument("--prompt", help="prompt to use instead of the recorded one")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--jump-tolerance", type=float, default=M.DEFAULT_JUMP_REL_TOL,
                   help="β recommendation: relative tolerance on the best mean jump (default 0.1)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _choose_policy(ns: argparse.Namespace, params: dict[str, Any]):
    """The recorded policy unless ``--policy``/``--policy-config``/``--checkpoint`` ask for another (``replay_policy``)."""
    with BagReader(ns.bag) as bag:
        recorded = read_identity(bag)
    return choose_policy(recorded, asked=ns.policy, params=params, allow_mismatch=ns.allow_policy_mismatch)


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``rtc-replay``; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    ns = parser.parse_args(args)
    params: dict[str, Any] = dict(ns.policy_param)
    cameras = dict(ns.camera) if ns.camera else None
    if ns.policy_config:
        ns.policy = ns.policy or "pi05"
        params["policy_config"] = ns.policy_config
        try:
            cameras = cameras or section_cameras(ns.policy_config)
        except ValueError as err:
            print(f"rtc-replay: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if ns.checkpoint is not None:
        params["checkpoint_dir"] = str(ns.checkpoint)
    if ns.tokenizer is not None:
        params["tokenizer_path"] = str(ns.tokenizer)
    try:
        chosen = _choose_policy(ns, params)
        print(f"rtc-replay: {chosen.note}", flush=True)
        cfg = ReplayConfig(
            bag=ns.bag, output=ns.output, policy=chosen.name, policy_params=chosen.params, modes=ns.modes, betas=ns.beta,
            delay=ns.delay, execution_horizon=ns.execution_horizon, schedule=ns.schedule, num_steps=ns.num_steps,
            switches=ns.switches, max_switches=ns.max_switches, figures=ns.figures, start_s=ns.start, end_s=ns.end,
            chunk_topic=ns.chunk_topic, state_topic=ns.state_topic, prompt_topic=ns.prompt_topic,
            cameras=cameras, prompt=ns.prompt, seed=ns.seed,
            jump_rel_tol=ns.jump_tolerance, progress=not ns.no_progress,
        )  # fmt: skip
        if cfg.policy == "pi05" and "policy_config" not in cfg.policy_params:
            missing = [flag for flag, key in PI05_REQUIRED.items() if not cfg.policy_params.get(key)]
            if missing:
                raise ValueError(f"--policy pi05 needs {' and '.join(PI05_REQUIRED)}; missing {', '.join(missing)}")
        run_replay(cfg)
    except (BagError, ReplayError, ValueError) as err:
        print(f"rtc-replay: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
