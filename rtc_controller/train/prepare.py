"""Everything a training run needs before its first step: the episode split, norm stats, the tokenizer, the model
architecture, its initial weights and the model-ready samples.

Order (each step needs the previous): training episodes -> norm stats (state, action chunks) -> prompts
with the discretised normalised state -> SentencePiece model -> the π0.5 architecture (vocabulary from the
tokenizer, action dim from the data, token budget from the longest prompt) -> random weights (openpi's
tree; they do not depend on the token budget) -> samples built by the policy's own transforms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

from rtc_controller.policy.pi05.config import Pi05Config
from rtc_controller.policy.pi05.model import Pi05Model
from rtc_controller.policy.pi05.norm_stats import NormStats
from rtc_controller.policy.pi05.params import Params, random_params
from rtc_controller.policy.pi05.policy import Pi05Policy
from rtc_controller.policy.pi05.policy_section import CameraSlot, Pi05PolicyConfig
from rtc_controller.policy.pi05.tokenizer import PaligemmaTokenizer
from rtc_controller.train.config import TrainConfig
from rtc_controller.train.dataset import EpisodeDataset, split_episodes
from rtc_controller.train.norm_stats import compute_norm_stats
from rtc_controller.train.samples import TrainingSet, build_training_set
from rtc_controller.train.tokenizer import TOKENIZER_FILE, prompt_lines, train_tokenizer

TOKEN_PROBE_LEN = 1024  # tokenise with this budget first, then cut to the longest prompt
TOKEN_LEN_MULTIPLE = 8


@dataclass(frozen=True, eq=False)
class RunSetup:
    """The prepared run: data, transforms, architecture and initial weights."""

    dataset: EpisodeDataset
    train_episodes: list[int]
    val_episodes: list[int]
    norm_stats: dict[str, NormStats]
    tokenizer_path: pathlib.Path
    model_config: Pi05Config
    init_params: Params
    policy_config: Pi05PolicyConfig  # how the trained checkpoint is to be driven (paths filled in at export)
    train_set: TrainingSet
    val_set: TrainingSet | None

    def fingerprint(self, cfg: TrainConfig) -> str:
        """A hash of the data and everything that changes training (a resume must match it)."""
        loop = {k: v for k, v in dataclasses.asdict(cfg.loop).items() if k != "time_budget_s"}
        body = {"config": {**cfg.to_dict(), "loop": loop}, "info": self.dataset.info.to_json(),
                "episodes": [dataclasses.asdict(m) for m in self.dataset.episodes],
                "train": self.train_episodes, "val": self.val_episodes,
                "tokenizer": hashlib.sha256(self.tokenizer_path.read_bytes()).hexdigest()}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def _state_labels(segments) -> list[str | None]:
    """A name per state-vector dim (for warnings): the segment's names, None for zeros (constant on purpose),
    ``<names>[k]`` else."""
    out: list[str | None] = []
    for seg in segments:
        if seg.representation == "zeros":
            out += [None] * seg.width
        elif seg.dim == len(seg.names):
            out += list(seg.names)
        else:
            out += [f"{'/'.join(seg.names)}[{k}]" for k in range(seg.dim)]
    return out


def _initial_assets(cfg: TrainConfig, run_dir: pathlib.Path, log: Callable[[str], None]):
    """Fine-tuning: the norm stats and the tokenizer of the exported policy ``objective.init_from`` (the prompts,
    which hold the discretised normalised state, must tokenise as they did)."""
    import shutil

    from rtc_controller.policy.pi05.norm_stats import find_norm_stats, load_norm_stats

    src = pathlib.Path(cfg.objective.init_from)
    stats = load_norm_stats(find_norm_stats(src, cfg.data.asset_id))
    tok_path = run_dir / TOKENIZER_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / TOKENIZER_FILE, tok_path)
    log(f"init: norm stats and tokenizer from {src}")
    return stats, tok_path


def _initial_params(init_from: str, probe: Pi05Config) -> Params:
    """Fine-tuning: the float32 weights of the exported policy ``init_from`` (its architecture must be ``probe``'s;
    a mismatch raises naming both)."""
    from rtc_controller.policy.pi05.checkpoint import load_params
    from rtc_controller.policy.pi05.params import flatten, param_shapes, unflatten

    got = flatten(load_params(pathlib.Path(init_from) / "params", dtype="float32"))
    expected = flatten(param_shapes(probe))
    wrong = sorted(k for k in expected if k not in got or tuple(got[k].shape) != tuple(expected[k]))
    if wrong:
        raise ValueError(f"objective.init_from {init_from}: its weights do not fit the configured model "
                         f"(e.g. {wrong[0]}: {getattr(got.get(wrong[0]), 'shape', 'missing')} vs "
                         f"{expected[wrong[0]]}); use the model section it was trained with")  # fmt: skip
    return unflatten({k: got[k] for k in expected})


def prepare_run(cfg: TrainConfig, data_root: str | pathlib.Path, run_dir: str | pathlib.Path, *,
                log: Callable[[str], None] = print) -> RunSetup:
    """Read the dataset under ``data_root`` and prepare a run writing into ``run_dir`` (tokenizer file)."""
    run_dir = pathlib.Path(run_dir)
    dataset = EpisodeDataset(data_root)
    info = dataset.info
    if info.state_names != info.action_names:
        raise ValueError(f"{data_root}: the state must be in the executor's action space (state names "
                         f"{list(info.state_names)} != action names {list(info.action_names)})")
    episodes = dataset.select(successful_only=cfg.data.successful_only)
    if not episodes:
        raise ValueError(f"{data_root}: no {'successful ' if cfg.data.successful_only else ''}episodes to train on")
    train_ids, val_ids = split_episodes(episodes, val_fraction=cfg.data.val_fraction, seed=cfg.loop.seed)
    log(f"data: {len(train_ids)} training / {len(val_ids)} validation episodes from {data_root}")

    def light():
        return (dataset.load(i, images=False) for i in train_ids)

    state_vector = cfg.data.state_vector(tuple(info.state_names))
    if cfg.objective.init_from:
        stats, tok_path = _initial_assets(cfg, run_dir, log)
    else:
        state_labels = _state_labels(cfg.data.state) if cfg.data.state else info.state_names
        stats = compute_norm_stats(light, horizon=cfg.data.horizon, delta_action_mask=cfg.data.delta_action_mask,
                                   state_pad_dim=cfg.data.state_pad_dim, state_vector=state_vector,
                                   names={"state": state_labels, "actions": info.action_names})
        lines = prompt_lines(light(), stats["state"], mode=cfg.data.normalization, pad_dim=cfg.data.state_pad_dim,
                             state_vector=state_vector)
        tok_path = train_tokenizer(lines, run_dir / TOKENIZER_FILE, vocab_size=cfg.tokenizer.vocab_size, log=log)
    tokenizer = PaligemmaTokenizer(tok_path, max_len=TOKEN_PROBE_LEN)
    probe = cfg.model.to_pi05_config(action_dim=len(info.action_names), action_horizon=cfg.data.horizon,
                                     max_token_len=TOKEN_PROBE_LEN, vocab_size=tokenizer.vocab_size)
    params = (_initial_params(cfg.objective.init_from, probe) if cfg.objective.init_from
              else random_params(probe, seed=cfg.loop.seed, dtype="float32", on_device=False))  # fmt: skip
    policy_cfg = Pi05PolicyConfig(
        checkpoint_dir=str(run_dir), tokenizer_path=str(tok_path), action_names=tuple(info.action_names),
        asset_id=cfg.data.asset_id, action_horizon=cfg.data.horizon, max_token_len=TOKEN_PROBE_LEN, dtype="float32",
        discrete_state_input=True, normalization=cfg.data.normalization, delta_action_mask=cfg.data.delta_action_mask,
        state=cfg.data.state, state_pad_dim=cfg.data.state_pad_dim,
        cameras={slot: CameraSlot(resolution=(cam.height, cam.width)) for slot, cam in info.cameras.items()},
        rtc_training_max_delay=cfg.objective.rtc_training_max_delay)
    policy = Pi05Policy(policy_cfg, model=Pi05Model(probe, params, stats), tokenizer=tokenizer)
    train_set = build_training_set(train_ids, dataset.load, policy, horizon=cfg.data.horizon)
    val_set = build_training_set(val_ids, dataset.load, policy, horizon=cfg.data.horizon) if val_ids else None
    longest = max(int(s.token_lengths().max()) for s in (train_set, val_set) if s is not None)
    token_len = cfg.tokenizer.max_token_len or round_up(longest, TOKEN_LEN_MULTIPLE)
    if token_len < longest:
        raise ValueError(f"tokenizer.max_token_len = {token_len} < the longest training prompt ({longest} tokens)")
    log(f"samples: {len(train_set)} training, {len(val_set) if val_set else 0} validation; "
        f"prompts up to {longest} tokens (budget {token_len}), vocabulary {tokenizer.vocab_size}")
    return RunSetup(
        dataset=dataset, train_episodes=train_ids, val_episodes=val_ids, norm_stats=stats, tokenizer_path=tok_path,
        model_config=dataclasses.replace(probe, max_token_len=token_len), init_params=params,
        policy_config=dataclasses.replace(policy_cfg, max_token_len=token_len),
        train_set=train_set.with_token_len(token_len),
        val_set=val_set.with_token_len(token_len) if val_set is not None else None,
    )
