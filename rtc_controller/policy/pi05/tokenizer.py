"""The π0.5 prompt: task text and the discretised state, tokenised with PaliGemma's SentencePiece model.

openpi's format (``PaligemmaTokenizer.tokenize`` with a state)::

    "Task: {prompt}, State: {s_0} {s_1} … {s_n};\nAction: "

where the prompt is stripped with "_" and newlines replaced by spaces, and s_i = digitize(state_i, 256 bins
over [−1, 1)) − 1 of the *normalised* state (so [−1, 1] -> 0…255; above 1 stays 255, below −1 gives −1, as in openpi).
The token ids start with BOS and are right-padded with 0 to ``max_len`` (mask False on padding).
"""

from __future__ import annotations

import logging
import pathlib

import numpy as np

logger = logging.getLogger(__name__)

STATE_BINS = 256


class TokenizerError(ValueError):
    """The SentencePiece model is missing or unreadable."""


def discretize_state(state_normalized: np.ndarray) -> np.ndarray:
    """Normalised state [n] -> integer bins [n]: −1 -> 0, 0 -> 128, 0.999 -> 255 (openpi's convention)."""
    bins = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]
    return np.digitize(np.asarray(state_normalized), bins=bins) - 1


def format_prompt(prompt: str, state_normalized: np.ndarray) -> str:
    """The π0.5 prompt string, e.g. ``"Task: pick up the cube, State: 128 0 255;\\nAction: "``."""
    cleaned = prompt.strip().replace("_", " ").replace("\n", " ")
    state_str = " ".join(map(str, discretize_state(state_normalized).tolist()))
    return f"Task: {cleaned}, State: {state_str};\nAction: "


class PaligemmaTokenizer:
    """SentencePiece tokenizer loaded from a local ``paligemma_tokenizer.model`` (no download)."""

    def __init__(self, model_path: str | pathlib.Path, *, max_len: int = 200) -> None:
        if max_len <= 0:
            raise ValueError(f"max_len must be positive, got {max_len}")
        path = pathlib.Path(model_path)
        if not path.is_file():
            raise TokenizerError(f"{path}: SentencePiece tokenizer model not found (PaliGemma's paligemma_tokenizer.model)")
        try:
            import sentencepiece
        except ImportError as e:  # pragma: no cover - in the pi05 extra
            raise ImportError("the π0.5 tokenizer needs sentencepiece (pip install '.[pi05]')") from e
        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_proto=path.read_bytes())
        except Exception as e:
            raise TokenizerError(f"{path}: cannot load SentencePiece model ({e})") from e
        self.path = path
        self.max_len = max_len

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def tokenize(self, prompt: str, state_normalized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (token ids int32 [max_len], mask bool [max_len]); truncates (with a warning) when too long."""
        ids = self._sp.encode(format_prompt(prompt, state_normalized), add_bos=True)
        if len(ids) > self.max_len:
            logger.warning("prompt has %d tokens, truncated to max_token_len=%d", len(ids), self.max_len)
            ids = ids[: self.max_len]
        tokens = np.zeros(self.max_len, np.int32)
        mask = np.zeros(self.max_len, bool)
        tokens[: len(ids)] = ids
        mask[: len(ids)] = True
        return tokens, mask

    def decode(self, ids: np.ndarray) -> str:
        return self._sp.decode([int(i) for i in ids])
