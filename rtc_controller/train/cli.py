"""``rtc-train``: make a dataset, inspect it, train a small π0.5 on it.

    rtc-train collect data/twin --episodes 100                  # expert demonstrations from the MuJoCo twin
    rtc-train synthetic data/synth --episodes 40                # synthetic demonstrations (tests, dry runs)
    rtc-train info data/synth                                   # what a dataset holds
    rtc-train fit --data data/synth --out runs/tiny             # train (config/train/tiny.yaml by default)
    rtc-train fit --data data/synth --out runs/tiny --resume    # continue after a stop or the time budget
    rtc-train fit ... --set loop.num_steps=2000 --set optimizer.peak_lr=5e-4 --time-budget-s 1200
    rtc-train check --run runs/tiny --data data/synth           # chunk errors on the held-out episodes

The trained policy is ``<out>/pi05/policy.yaml`` (with the checkpoint, norm stats and tokenizer beside it).
Errors print one line ``rtc-train: error: …`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import sys
from collections.abc import Sequence

from rtc_controller.config_check import ConfigError
from rtc_controller.config_files import config_path
from rtc_controller.policy.pi05.config import IMAGE_KEYS
from rtc_controller.train.checkpoints import ResumeError
from rtc_controller.train.collect import DEFAULT_SEED as DEFAULT_COLLECT_SEED
from rtc_controller.train.dataset import DatasetError, EpisodeDataset

EXIT_BAD_INPUT = 2
DEFAULT_CONFIG = "train/tiny.yaml"
DEFAULT_CACHE = "~/.cache/rtc_controller/jax"


def _size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    try:
        return int(h), int(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, e.g. 48x64, got {text!r}") from None


def _slots(text: str) -> tuple[str, ...]:
    slots = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in slots if s not in IMAGE_KEYS]
    if bad or not slots:
        raise argparse.ArgumentTypeError(f"camera slots must be among {IMAGE_KEYS}, got {text!r}")
    return slots


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-train", description="Datasets and training of a small π0.5.")
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("collect", help="write expert demonstrations from the MuJoCo twin (cameras, state, prompt)")
    k.add_argument("out", type=pathlib.Path, help="dataset folder to create (or to resume)")
    k.add_argument("--episodes", type=int, default=100, help="episodes in the dataset (default 100)")
    k.add_argument("--seed", type=int, default=DEFAULT_COLLECT_SEED,
                   help=f"twin seed of episode 0; episode i runs seed + i (default {DEFAULT_COLLECT_SEED}: rtc-eval's "
                        "seeds 0 … N−1 stay unseen)")
    k.add_argument("--camera-rate", type=float, default=10.0, help="camera frames per second (default 10)")
    k.add_argument("--image-size", type=_size, help="camera HEIGHTxWIDTH [px] (default: the world's, as twin_node)")
    k.add_argument("--cameras", type=_slots, default=IMAGE_KEYS, help="comma-separated π0.5 slots (default all three)")
    k.add_argument("--twin-config", default="", help="world file with scene:/task: (default: the twin's defaults)")
    k.add_argument("--execution-horizon", type=int, default=10, help="the expert replans every N action steps")
    k.add_argument("--perturb", type=float, default=0.0, metavar="SIGMA_M",
                   help="recovery demonstrations: perturb the executed chunks by bumps of this std [m] (0 = off)")
    k.add_argument("--perturb-fraction", type=float, default=0.5, help="fraction of the episodes perturbed (0.5)")
    kmode = k.add_mutually_exclusive_group()
    kmode.add_argument("--resume", action="store_true", help="continue a stopped collection in OUT")
    kmode.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    s = sub.add_parser("synthetic", help="write a synthetic dataset (two-arm pick and place, NumPy cameras)")
    s.add_argument("out", type=pathlib.Path, help="dataset folder to create")
    s.add_argument("--episodes", type=int, default=20)
    s.add_argument("--steps", type=int, default=200, help="action steps per episode (default 200)")
    s.add_argument("--fps", type=float, default=50.0, help="action rate [Hz] (default 50)")
    s.add_argument("--camera-every", type=int, default=2, help="a camera frame every N action steps (default 2)")
    s.add_argument("--image-size", type=_size, default=(48, 64), help="camera HEIGHTxWIDTH [px] (default 48x64)")
    s.add_argument("--cameras", type=_slots, default=IMAGE_KEYS, help="comma-separated π0.5 slots (default all three)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    i = sub.add_parser("info", help="summarise a dataset")
    i.add_argument("data", type=pathlib.Path)
    f = sub.add_parser("fit", help="train a π0.5 on a dataset; writes <out>/pi05/policy.yaml")
    f.add_argument("--data", type=pathlib.Path, required=True, help="dataset folder (meta/info.json, episodes/)")
    f.add_argument("--out", type=pathlib.Path, required=True, help="run folder")
    f.add_argument("--config", type=pathlib.Path, help=f"training config (default config/{DEFAULT_CONFIG})")
    f.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override, repeatable (e.g. loop.num_steps=2000)")
    mode = f.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    mode.add_argument("--overwrite", action="store_true", help="delete --out and start over")
    f.add_argument("--time-budget-s", type=float, help="stop with a resumable checkpoint after this long [s]")
    f.add_argument("--stop-at", type=int, metavar="STEP", help="stop with a resumable checkpoint at this step")
    f.add_argument("--compilation-cache", default=DEFAULT_CACHE,
                   help=f"JAX persistent compilation cache ('' = off; default {DEFAULT_CACHE})")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("check", help="position errors of a trained policy's chunks against recorded episodes")
    c.add_argument("--run", type=pathlib.Path, required=True, help="run folder of `fit` (its pi05/ and split.json)")
    c.add_argument("--data", type=pathlib.Path, required=True, help="dataset folder")
    c.add_argument("--episodes", choices=("val", "train", "all"), default="val", help="which episodes (default val)")
    c.add_argument("--samples", type=int, default=32, help="steps to evaluate, evenly spread (default 32)")
    c.add_argument("--k", type=int, default=4, help="chunks sampled per step (default 4)")
    return p


def _synthetic(ns: argparse.Namespace) -> None:
    from rtc_controller.train.synthetic import SyntheticConfig, write_synthetic_dataset

    cfg = SyntheticConfig(num_episodes=ns.episodes, episode_steps=ns.steps, fps=ns.fps, camera_every=ns.camera_every,
                          cameras=ns.cameras, image_height=ns.image_size[0], image_width=ns.image_size[1], seed=ns.seed)
    info = write_synthetic_dataset(ns.out, cfg, overwrite=ns.overwrite)
    print(f"wrote {info.num_episodes} episodes ({info.num_steps} action steps) to {ns.out}")


def _collect(ns: argparse.Namespace) -> None:
    from tqdm import tqdm

    from rtc_controller.train.collect import CollectConfig, collect_twin_dataset

    h, w = ns.image_size or (0, 0)
    cfg = CollectConfig(num_episodes=ns.episodes, seed=ns.seed, camera_rate_hz=ns.camera_rate, cameras=ns.cameras,
                        image_height=h, image_width=w, execution_horizon=ns.execution_horizon,
                        twin_config=ns.twin_config, perturb_sigma_m=ns.perturb, perturb_fraction=ns.perturb_fraction)
    bar = tqdm(total=ns.episodes, disable=ns.no_progress, unit="episode", dynamic_ncols=True, desc="rtc-train collect",
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    failed = [0]

    def progress(i: int, n: int, ok: bool) -> None:
        failed[0] += not ok
        bar.n = i + 1
        bar.set_postfix(failed=failed[0])

    try:
        result = collect_twin_dataset(ns.out, cfg, overwrite=ns.overwrite, resume=ns.resume, progress=progress)
    finally:
        bar.close()
    info = result.info
    print(f"wrote {result.new_episodes} episodes to {ns.out}: {info.num_episodes} in all ({result.successes} "
          f"successful), {info.num_steps} action steps ({info.num_steps / info.fps:.0f} s)")


def _info(ns: argparse.Namespace) -> None:
    ds = EpisodeDataset(ns.data)
    info = ds.info
    ok = sum(m.success for m in ds.episodes)
    print(f"{ns.data}: {info.num_episodes} episodes ({ok} successful), {info.num_steps} action steps at {info.fps:g} Hz "
          f"({info.num_steps / info.fps:.0f} s)")
    print(f"  state: {len(info.state_names)} dims; actions: {len(info.action_names)} dims ({', '.join(info.action_names)})")
    for slot, cam in info.cameras.items():
        print(f"  camera {slot}: {cam.height}x{cam.width} px at {cam.fps:g} Hz")
    print(f"  prompts: {list(info.prompts)}; generator: {dict(info.generator)}")


def _check(ns: argparse.Namespace) -> None:
    import json

    from rtc_controller.policy.pi05.policy import Pi05Policy
    from rtc_controller.policy.pi05.policy_section import load_policy_section
    from rtc_controller.train.evaluate import chunk_errors
    from rtc_controller.train.export import EXPORT_DIR, POLICY_FILE
    from rtc_controller.train.loop import SPLIT_FILE

    split_path = ns.run / SPLIT_FILE
    if not split_path.is_file():
        raise FileNotFoundError(f"{split_path}: not found ({ns.run} is not a finished `rtc-train fit` run)")
    split = json.loads(split_path.read_text())
    episodes = {"val": split["val"] or split["train"], "train": split["train"],
                "all": sorted(split["train"] + split["val"])}[ns.episodes]
    policy = Pi05Policy(load_policy_section(ns.run / EXPORT_DIR / POLICY_FILE))
    errors = chunk_errors(policy, EpisodeDataset(ns.data), episodes, num_samples=ns.samples, k=ns.k)
    print(f"{ns.episodes} episodes {episodes[:8]}{' …' if len(episodes) > 8 else ''}: {errors.summary()}")


def _fit(ns: argparse.Namespace, argv: Sequence[str]) -> None:
    if ns.compilation_cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(ns.compilation_cache))
    from rtc_controller.train.config import load_train_config
    from rtc_controller.train.loop import fit

    overrides = list(ns.overrides)
    if ns.time_budget_s is not None:
        overrides.append(f"loop.time_budget_s={ns.time_budget_s}")
    cfg = load_train_config(ns.config or config_path(DEFAULT_CONFIG), overrides)
    result = fit(cfg, ns.data, ns.out, resume=ns.resume, overwrite=ns.overwrite, progress=not ns.no_progress,
                 stop_at=ns.stop_at, command=shlex.join(["rtc-train", *argv]))
    val = f", validation loss {result.val_loss:.4f}" if result.val_loss is not None else ""
    state = "done" if result.completed else "stopped (resume with --resume)"
    print(f"{state}: {result.step}/{cfg.loop.num_steps} steps in {result.elapsed_s:.0f} s, "
          f"training loss {result.train_loss:.4f}{val}; loss curve {ns.out / 'loss.png'}")
    print(f"policy: {result.policy_file}")


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``rtc-train``; returns the exit status (0 ok, 2 bad input)."""
    argv = list(sys.argv[1:] if args is None else args)
    ns = build_parser().parse_args(argv)
    try:
        if ns.command == "collect":
            _collect(ns)
        elif ns.command == "synthetic":
            _synthetic(ns)
        elif ns.command == "info":
            _info(ns)
        elif ns.command == "check":
            _check(ns)
        else:
            _fit(ns, argv)
    except (ConfigError, DatasetError, ResumeError, FileNotFoundError, ValueError, FloatingPointError) as err:
        print(f"rtc-train: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("rtc-train: interrupted; the newest checkpoint can be resumed with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
