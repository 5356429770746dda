"""rtc-replay replays with the policy the bag records and refuses another unless told (``tools/replay_policy``)."""

import pytest

from rtc_controller import topics
from rtc_controller.policy.identity import PolicyIdentity, checkpoint_fingerprint, identity_for
from rtc_controller.tools import replay_cli
from rtc_controller.bags.bag_reader import BagReader
from rtc_controller.bags.bag_writer import BagWriter
from rtc_controller.tools.replay_config import ReplayError
from rtc_controller.tools.replay_policy import choose_policy, read_identity


@pytest.fixture
def checkpoint(tmp_path):
    ck = tmp_path / "ckpt"
    (ck / "params").mkdir(parents=True)
    (ck / "params" / "_METADATA").write_text("step 29999")
    return ck


def test_a_bag_without_identity_replays_with_sim_and_says_so():
    chosen = choose_policy(None, asked=None, params={})
    assert chosen.name == "sim" and "records no policy identity" in chosen.note


def test_the_recorded_checkpoint_is_used_by_default_and_checked(checkpoint):
    recorded = identity_for("pi05", checkpoint=str(checkpoint), tokenizer="/tok.model")
    assert recorded.checkpoint_fingerprint == checkpoint_fingerprint(checkpoint) != ""
    chosen = choose_policy(recorded, asked=None, params={})
    assert (chosen.name, chosen.params) == ("pi05", {"checkpoint_dir": str(checkpoint), "tokenizer_path": "/tok.model"})
    assert "as recorded" in chosen.note
    (checkpoint / "params" / "_METADATA").write_text("step 10000")  # another checkpoint under the same path
    with pytest.raises(ReplayError, match="checkpoint fingerprint .* != recorded"):
        choose_policy(recorded, asked=None, params={})


def test_another_policy_is_refused_unless_allowed(checkpoint):
    recorded = identity_for("pi05", checkpoint=str(checkpoint), tokenizer="/tok.model")
    with pytest.raises(ReplayError, match="policy 'sim' != recorded 'pi05'.*--allow-policy-mismatch"):
        choose_policy(recorded, asked="sim", params={})
    chosen = choose_policy(recorded, asked="sim", params={}, allow_mismatch=True)
    assert chosen.name == "sim" and "NOT the recorded pi05" in chosen.note


def test_twin_policies_cannot_replay_offline():
    with pytest.raises(ReplayError, match="live twin's world"):
        choose_policy(PolicyIdentity("twin_expert"), asked=None, params={})


def test_the_identity_round_trips_through_a_bag_and_the_cli_refuses(tmp_path, capsys):
    bag = tmp_path / "bag"
    with BagWriter(bag, storage="mcap") as w:
        w.write_prompt(PolicyIdentity("twin_expert").to_json(), 1_000_000_000, topic=topics.POLICY_IDENTITY)
    with BagReader(bag) as b:
        assert read_identity(b) == PolicyIdentity("twin_expert")
    assert replay_cli.main([str(bag), "-o", str(tmp_path / "out"), "--no-progress"]) == replay_cli.EXIT_BAD_INPUT
    assert "recorded with policy 'twin_expert'" in capsys.readouterr().err
