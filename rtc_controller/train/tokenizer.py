"""Train the SentencePiece model of a small π0.5 on its own prompts (stands in for PaliGemma's 257k-piece model).

The training text is exactly what the policy tokenises at run time: ``format_prompt(prompt, s)`` of
``policy/pi05/tokenizer.py`` ("Task: …, State: 128 0 255 …;\\nAction: ") for the normalised state s of every
training step. The model is a BPE with PaliGemma's special ids (pad 0, eos 1, bos 2, unk 3), trained
single-threaded on the lines in a fixed order, so the same lines give the same file. Like Gemma's tokenizer it
keeps the text as it is (no normalisation, whitespace and the newline before "Action:" preserved), so a prompt
decodes back to itself. It is loaded by ``PaligemmaTokenizer`` unchanged.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from rtc_controller.policy.pi05.norm_stats import NormMode, NormStats
from rtc_controller.policy.pi05.tokenizer import format_prompt
from rtc_controller.train.dataset import Episode
from rtc_controller.train.norm_stats import StateVector, padded_state

TOKENIZER_FILE = "tokenizer.model"
PAD_ID, EOS_ID, BOS_ID, UNK_ID = 0, 1, 2, 3  # PaliGemma's special token ids
MAX_TRAINING_LINES = 50_000  # more lines are subsampled (evenly, deterministically)


def normalized_states(state: np.ndarray, stats: NormStats, *, mode: NormMode, pad_dim: int | None,
                      state_vector: StateVector | None = None) -> np.ndarray:
    """Physical states [T, S] -> normalised [T, S'] as ``Pi05Policy.normalized_state`` does per step
    (``state_vector``: the policy section's state segments; None: the recorded state as it is)."""
    return stats.normalize(padded_state(state, pad_dim, state_vector), mode, what="state")


def prompt_lines(episodes: Iterable[Episode], stats: NormStats, *, mode: NormMode = "quantile",
                 pad_dim: int | None = None, state_vector: StateVector | None = None) -> list[str]:
    """Every step's π0.5 prompt string (task text and discretised normalised state)."""
    lines = []
    for ep in episodes:
        for s in normalized_states(ep.state, stats, mode=mode, pad_dim=pad_dim, state_vector=state_vector):
            lines.append(format_prompt(ep.prompt, s))
    return lines


def train_tokenizer(lines: Sequence[str], path: str | pathlib.Path, *, vocab_size: int,
                    log: Callable[[str], None] | None = None) -> pathlib.Path:
    """Train a BPE SentencePiece model on ``lines`` and write it to ``path``. Returns ``path``.

    ``vocab_size`` is an upper bound (fewer pieces when the text has fewer merges to make).
    """
    import sentencepiece

    if not lines:
        raise ValueError("cannot train a tokenizer on no lines")
    if vocab_size < 8:
        raise ValueError(f"vocab_size must be >= 8, got {vocab_size}")
    if len(lines) > MAX_TRAINING_LINES:
        keep = np.linspace(0, len(lines) - 1, MAX_TRAINING_LINES).round().astype(int)
        lines = [lines[i] for i in keep]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="bpe", character_coverage=1.0, pad_id=PAD_ID, eos_id=EOS_ID, bos_id=BOS_ID, unk_id=UNK_ID,
        normalization_rule_name="identity", remove_extra_whitespaces=False,  # keep "\n" and the trailing space
        num_threads=1, shuffle_input_sentence=False, input_sentence_size=0, max_sentence_length=16384,
        minloglevel=2,
    )
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    if log is not None:
        log(f"tokenizer: {len(lines)} lines -> {path}")
    return path
