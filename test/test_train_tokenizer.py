"""The trained SentencePiece model: trained on exactly the prompts the policy formats, deterministic, PaliGemma's
special ids, loadable by PaligemmaTokenizer, and every training prompt encodes without unknown pieces."""

import numpy as np
import pytest
from train_setup import synthetic_config

from rtc_controller.policy.pi05.tokenizer import PaligemmaTokenizer, format_prompt
from rtc_controller.train.norm_stats import compute_norm_stats
from rtc_controller.train.synthetic import make_episode
from rtc_controller.train.tokenizer import BOS_ID, PAD_ID, UNK_ID, normalized_states, prompt_lines, train_tokenizer

PROMPTS = ("put the items in the bins", "fold the towel_neatly")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = synthetic_config(prompts=PROMPTS, num_episodes=4)
    eps = [make_episode(cfg, i) for i in range(cfg.num_episodes)]
    stats = compute_norm_stats(lambda: iter(eps), horizon=4)
    lines = prompt_lines(eps, stats["state"])
    path = train_tokenizer(lines, tmp_path_factory.mktemp("tok") / "tokenizer.model", vocab_size=300)
    return eps, stats, lines, path


def test_lines_are_the_policy_prompts(setup):
    eps, stats, lines, _ = setup
    assert len(lines) == sum(e.length for e in eps)
    s0 = stats["state"].normalize(eps[0].state[3].astype(np.float64))  # what Pi05Policy.normalized_state does
    assert lines[3] == format_prompt(eps[0].prompt, s0)
    assert lines[3].startswith("Task: ") and lines[3].endswith(";\nAction: ")
    padded = compute_norm_stats(lambda: iter(eps), horizon=4, state_pad_dim=16)["state"]
    assert normalized_states(eps[0].state, padded, mode="quantile", pad_dim=16).shape == (eps[0].length, 16)


def test_tokenizer_round_trips_with_paligemma_ids(setup):
    eps, stats, lines, path = setup
    tok = PaligemmaTokenizer(path, max_len=128)
    assert tok.vocab_size <= 300
    for line_index in (0, 77, len(lines) - 1):
        ep = eps[line_index // eps[0].length]
        t = line_index % eps[0].length
        ids, mask = tok.tokenize(ep.prompt, stats["state"].normalize(ep.state[t].astype(np.float64)))
        n = int(mask.sum())
        assert ids[0] == BOS_ID and np.all(ids[n:] == PAD_ID) and UNK_ID not in ids[:n]
        assert tok.decode(ids[:n]) == lines[line_index]


def test_training_is_deterministic(setup, tmp_path):
    _, _, lines, path = setup
    again = train_tokenizer(lines, tmp_path / "again.model", vocab_size=300)
    assert again.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="no lines"):
        train_tokenizer([], tmp_path / "x.model", vocab_size=300)
