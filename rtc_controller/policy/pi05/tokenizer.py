"""The π0.5 prompt: task text and the discretised state, tokenised with PaliGemma's SentencePiece model.

openpi's format (``PaligemmaTokenizer.tokenize`` with a state)::

    "Task: {prompt}, State: {s_0} {s_1} … {s_n};\nAction: "

where the prompt is stripped with "_" and newlines replaced by spaces, and s_i = digitize(state_i, 256 bins
over [−1, 1)) − 1 of the *normalised* state (so [−1, 1] -> 0…255; above 1 stays 255, below −1 gives −1, as in openpi).
The token ids start with BOS and are right-padded with 0 to ``max_len`` (mask False on padding). Without the
state (``discrete_state_input: false``, e.g. openpi's ``pi05_libero``) the ids are BOS + the cleaned prompt +
the separately encoded "\n".
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


def clean_prompt(prompt: str) -> str:
    """openpi's cleaning: stripped, "_" and newlines replaced by spaces."""
    return prompt.strip().replace("_", " ").replace("\n", " ")


def format_prompt(prompt: str, state_normalized: np.ndarray) -> str:
    """The π0.5 prompt string, e.g. ``"Task: pick up the cube, State: 128 0 255;\\nAction: "``."""
    state_str = " ".join(map(str, discretize_state(state_normalized).tolist()))
    return f"Task: {clean_prompt(prompt)}, State: {state_str};\nAction: "


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

    def token_ids(self, prompt: str, state_normalized: np.ndarray | None) -> list[int]:
        """openpi's ids: with a state, BOS + the π0.5 prompt (``discrete_state_input``); without, BOS + the
        cleaned prompt followed by the separately encoded "\\n" (openpi's format without state)."""
        if state_normalized is not None:
            return self._sp.encode(format_prompt(prompt, state_normalized), add_bos=True)
        return self._sp.encode(clean_prompt(prompt), add_bos=True) + self._sp.encode("\n")

    def tokenize(self, prompt: str, state_normalized: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """-> (token ids int32 [max_len], mask bool [max_len]). A prompt longer than max_len is refused: openpi
        would cut it (and the state or the "Action: " cue with it) and act on a different prompt."""
        ids = self.token_ids(prompt, state_normalized)
        if len(ids) > self.max_len:
            raise ValueError(f"the prompt {prompt!r} with the state takes {len(ids)} tokens > max_token_len "
                             f"{self.max_len}: shorten it or raise max_token_len (the training value)")
        tokens = np.zeros(self.max_len, np.int32)
        mask = np.zeros(self.max_len, bool)
        tokens[: len(ids)] = ids
        mask[: len(ids)] = True
        return tokens, mask

    def decode(self, ids: np.ndarray) -> str:
        return self._sp.decode([int(i) for i in ids])
