"""rtc-replay on bags written like ``ros2 bag record`` (both storage formats) from a simulated sim-policy run.

The run: the sim policy (multimodal bin scene, H = 32, Δt = 20 ms) produces a chunk every s = 12 steps; each
chunk after the first is guided (stop, β = 10) toward the previous one with d = 5 and the robot tracks the
executed actions exactly; states are recorded every step, chunks at their arrival (t_obs + d·Δt).
"""

from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rtc_controller import topics
from rtc_controller.control.chunk import Chunk
from rtc_controller.policy.base import Observation
from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk
from rtc_controller.app.policies import make_policy
from rtc_controller.rtc import build_prefix, prefix_weights, sample
from rtc_controller.tools import replay, replay_cli, replay_config, replay_resample, replay_switches
from rtc_controller.bags.bag_reader import BagReader
from rtc_controller.bags.bag_types import STORAGES
from rtc_controller.bags.bag_writer import BagWriter
from rtc_controller.tools.plots import PANELS_KEY

H, DT_S, S, D, N_CHUNKS = 32, 0.02, 12, 5, 6
T0_S = 100.0
PROMPT = "sort the items into the bins"


@pytest.fixture(scope="module")
def policy():
    return make_policy("sim", horizon=H, dt_s=DT_S)


@pytest.fixture(scope="module")
def rollout(policy):
    """Chunks [N] and executed states {step: [D]} of a simulated run (what the inference node published)."""
    base = policy.fake_observation()
    state0 = base.state.copy()
    state0[6] = state0[13] = policy.config.gripper_closed_m  # carrying: the bin choice matters at once
    executed: dict[int, np.ndarray] = {0: state0}
    chunks: list[Chunk] = []
    prev = None
    for j in range(N_CHUNKS):
        k0 = j * S
        obs = Observation(state=executed[k0], stamp_s=T0_S + k0 * DT_S)
        ctx = policy.prepare(obs)
        noise = jax.random.normal(jax.random.key(1000 + j), (1, H, policy.model_action_dim))
        if prev is None:
            x = sample(policy.velocity, noise, context=ctx, mode="none")
        else:
            pre = build_prefix(prev.actions, t_obs_prev_s=prev.t_obs_s, t_obs_s=obs.stamp_s, dt_s=DT_S)
            w = np.asarray(prefix_weights(D, H - S, H)) * pre.valid
            y = jnp.asarray(policy.to_model(pre.actions[None]), jnp.float32)
            x = sample(policy.velocity, noise, context=ctx, prefix=y, weights=w, max_guidance_weight=10.0, mode="stop")
        actions = policy.to_physical(np.asarray(x))[0]
        chunk = Chunk(policy.action_names, actions, obs.stamp_s, DT_S, None if prev is None else D)
        for k in range(0 if prev is None else D, H):
            executed[k0 + k] = actions[k]
        chunks.append(chunk)
        prev = chunk
    return chunks, executed


def write_run(path, storage, rollout, *, names, with_d=True, skip=()):
    chunks, executed = rollout
    with BagWriter(path, storage=storage) as w:
        w.write_prompt(PROMPT, int((T0_S - 0.5) * 1e9))
        for k in sorted(executed):
            if "state" not in skip:
                w.write_state(executed[k], names, T0_S + k * DT_S, log_time_ns=int((T0_S + k * DT_S + 1e-4) * 1e9))
        for c in chunks:
            if with_d:
                w.write_chunk(c, log_time_ns=int((c.t_obs_s + D * DT_S) * 1e9))
            else:
                w.write_chunk(Chunk(c.names, c.actions, c.t_obs_s, c.dt_s, None), log_time_ns=int((c.t_obs_s + D * DT_S) * 1e9))
            w.write_int32(topics.INFERENCE_DELAY, D + 1, int((c.t_obs_s - 0.01) * 1e9))
    return path


@pytest.fixture(scope="module", params=STORAGES)
def run_bag(request, tmp_path_factory, rollout, policy):
    path = tmp_path_factory.mktemp(f"bag_{request.param}") / "run"
    return write_run(path, request.param, rollout, names=policy.action_names)


def config(bag, out, **kw):
    kw.setdefault("progress", False)
    return replay_config.ReplayConfig(bag=bag, output=out, **kw)


def test_reconstructs_switch_inputs(run_bag, rollout, tmp_path):
    chunks, executed = rollout
    with BagReader(run_bag) as bag:
        switches = replay_switches.load_switches(bag, config(run_bag, tmp_path))
    assert [sw.index for sw in switches] == list(range(1, N_CHUNKS))
    for sw in switches:
        prev, new = chunks[sw.index - 1], chunks[sw.index]
        assert (sw.d, sw.d_source) == (D, "frame_id")
        assert sw.execution_horizon == S  # inferred from the cadence
        assert sw.prefix.shift_steps == S
        np.testing.assert_allclose(sw.prefix.actions[: H - S], prev.actions[S:])
        assert sw.prefix.valid.tolist() == [i < H - S for i in range(H)]
        np.testing.assert_allclose(sw.chunk.actions, new.actions)
        np.testing.assert_allclose(sw.previous.actions, prev.actions)
        assert sw.weights[:D].tolist() == [1.0] * D and np.all(sw.weights[H - S :] == 0)
        np.testing.assert_allclose(sw.observation.state, executed[sw.index * S])
        assert sw.observation.stamp_s == pytest.approx(new.t_obs_s)
        assert sw.observation.prompt == PROMPT
        np.testing.assert_allclose(sw.history, prev.actions[S - 3 : S])


def test_delay_fallbacks(tmp_path, rollout, policy):
    bag = write_run(tmp_path / "no_d", "mcap", rollout, names=policy.action_names, with_d=False)
    with BagReader(bag) as b:
        from_topic = replay_switches.load_switches(b, config(bag, tmp_path))
        forced = replay_switches.load_switches(b, config(bag, tmp_path, delay=3))
    assert {(sw.d, sw.d_source) for sw in from_topic} == {(D + 1, topics.INFERENCE_DELAY)}
    assert {(sw.d, sw.d_source) for sw in forced} == {(3, "--delay")}


@pytest.mark.slow
def test_replay_outputs_and_stop_beats_none(run_bag, policy, tmp_path):
    betas = (1.0, 10.0)
    cfg = config(run_bag, tmp_path / "out", modes=("none", "stop", "full"), betas=betas, figures=1)
    result = replay.run_replay(cfg, policy=policy)

    rows = list(csv.DictReader(open(tmp_path / "out" / "metrics.csv")))
    assert [(r["mode"], float(r["beta"])) for r in rows] == [(m, b) for m in ("none", "stop", "full") for b in betas]
    assert all(int(r["switches"]) == N_CHUNKS - 1 for r in rows)
    per = list(csv.DictReader(open(tmp_path / "out" / "switch_metrics.csv")))
    assert len(per) == (N_CHUNKS - 1) * 3 * len(betas)

    table = {(r["mode"], r["beta"]): r for r in result.table}
    none, stop = table[("none", 10.0)], table[("stop", 10.0)]
    assert stop["mean_jump"] < 0.5 * none["mean_jump"]
    assert stop["mean_mismatch"] < none["mean_mismatch"]
    assert stop["mean_jerk"] < 0.5 * none["mean_jerk"]
    assert table[("stop", 10.0)]["mean_jump"] <= table[("stop", 1.0)]["mean_jump"]
    # none ignores β
    assert table[("none", 1.0)]["mean_jump"] == table[("none", 10.0)]["mean_jump"]

    # one figure per variant (none once) of one switch, one panel per action dimension, title with mode/β/d/H
    assert len(result.figures) == 1 + 2 * len(betas)
    for path in result.figures:
        assert path.exists()
        meta = Image.open(path).text
        assert int(meta[PANELS_KEY]) == len(policy.action_names)
        assert f"d={D}" in meta["Title"] and f"H={H}" in meta["Title"]
    titles = [Image.open(p).text["Title"] for p in result.figures]
    assert any("stop, β=10" in t for t in titles) and any("full, β=1," in t for t in titles)

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["recommended_beta"]) == {"none", "stop", "full"}
    assert summary["recommended_beta"]["stop"]["beta"] in betas
    assert summary["recommended_beta"]["stop"]["reason"]


@pytest.mark.slow
def test_resample_switch_is_the_inference_path_with_one_prepare(run_bag, policy, tmp_path, monkeypatch):
    """Every variant equals what the inference node's ChunkSampler.sample gives for the same key, and the
    policy's conditioning pass runs once per switch, not once per variant."""
    with BagReader(run_bag) as bag:
        sw = replay_switches.load_switches(bag, config(run_bag, tmp_path))[0]
    sampler = ChunkSampler(policy, dt_s=DT_S, num_steps=10)
    calls = []
    original = policy.prepare
    monkeypatch.setattr(policy, "prepare", lambda obs: calls.append(obs) or original(obs))
    betas = (1.0, 10.0)
    unguided, variants = replay_resample.resample_switch(sampler, sw, modes=("none", "stop", "full"), betas=betas,
                                                schedule="exp", seed=3)  # fmt: skip
    assert len(calls) == 1 and calls[0] is sw.observation
    key = jax.random.fold_in(jax.random.key(3), sw.index)
    previous = PreviousChunk(sw.previous.actions, sw.previous.t_obs_s)
    for mode, beta in [("stop", 10.0), ("full", 1.0)]:
        settings = GuidanceSettings(sw.d, sw.execution_horizon, max_guidance_weight=beta, mode=mode)
        direct = sampler.sample(sw.observation, previous=previous, key=key, settings=settings)
        np.testing.assert_array_equal(variants[(mode, beta)], direct.actions)
        np.testing.assert_array_equal(direct.weights, sw.weights)  # the same Y/W as load_switches rebuilt
    assert all(variants[("none", b)] is unguided for b in betas)
    assert not np.allclose(variants[("stop", 10.0)], unguided)


@pytest.mark.slow
def test_cli_end_to_end(tmp_path, rollout, policy, capsys):
    bag = write_run(tmp_path / "bag", "sqlite3", rollout, names=policy.action_names)
    out = tmp_path / "out"
    code = replay_cli.main([str(bag), "-o", str(out), "--modes", "none,stop", "--beta", "10", "--figures", "0",
                        "--max-switches", "2", "--num-steps", "5"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert "recommended β for stop: 10" in printed.out
    assert "mean_jump" in printed.out
    assert "rtc-replay" in printed.err  # progress
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [(r["mode"], r["beta"], r["switches"]) for r in rows] == [("none", "10.0", "2"), ("stop", "10.0", "2")]


# ------------------------------------------------------------------------------------------------ error cases


def _run_cli(capsys, *args):
    code = replay_cli.main([*map(str, args), "--no-progress"])
    return code, capsys.readouterr().err


def test_error_missing_topic(tmp_path, rollout, policy, capsys):
    bag = write_run(tmp_path / "nostate", "mcap", rollout, names=policy.action_names, skip=("state",))
    code, err = _run_cli(capsys, bag, "-o", tmp_path / "o")
    assert code == replay_cli.EXIT_BAD_INPUT
    assert "has no topic 'rtc/robot_state'" in err and "/rtc/chunk" in err
    assert not (tmp_path / "o" / "metrics.csv").exists()


@pytest.mark.parametrize("storage", STORAGES)
def test_error_unknown_message_type(tmp_path, storage, capsys):
    bag = tmp_path / "wrongtype"
    with BagWriter(bag, storage=storage) as w:
        w.write("rtc/chunk", "std_msgs/msg/String", w.typestore.types["std_msgs/msg/String"](data="x"), 1)
        w.write_state(np.zeros(2), ["a", "b"], 1.0)
    code, err = _run_cli(capsys, bag, "-o", tmp_path / "o")
    assert code == replay_cli.EXIT_BAD_INPUT
    assert "unknown message type 'std_msgs/msg/String' on topic /rtc/chunk" in err


def test_error_custom_type_without_definition(tmp_path, capsys):
    """A type the bag does not define and rosbags does not know cannot be read: clear message."""
    bag = tmp_path / "custom"
    with BagWriter(bag, storage="mcap") as w:
        w.add_topic("rtc/chunk", "my_msgs/msg/Chunk", msgdef="", rihs01="RIHS01_" + "0" * 64)  # no definition stored
        w.write_raw("rtc/chunk", "my_msgs/msg/Chunk", bytes(12), 1)
    with BagReader(bag) as b, pytest.raises(Exception, match="my_msgs/msg/Chunk"):
        list(b.messages("rtc/chunk"))
    code, err = _run_cli(capsys, bag, "-o", tmp_path / "o")
    assert code == replay_cli.EXIT_BAD_INPUT and "unknown message type 'my_msgs/msg/Chunk'" in err


def test_error_empty_time_range(run_bag, tmp_path, capsys):
    code, err = _run_cli(capsys, run_bag, "-o", tmp_path / "o", "--start", 1000)
    assert code == replay_cli.EXIT_BAD_INPUT and "empty time range" in err
    code, err = _run_cli(capsys, run_bag, "-o", tmp_path / "o", "--start", 2, "--end", 1)
    assert code == replay_cli.EXIT_BAD_INPUT and "empty time range" in err


def test_error_no_delay_anywhere(tmp_path, rollout, policy, capsys):
    chunks, executed = rollout
    bag = tmp_path / "nod"
    with BagWriter(bag, storage="mcap") as w:
        for k in sorted(executed):
            w.write_state(executed[k], policy.action_names, T0_S + k * DT_S)
        for c in chunks[:3]:
            w.write_chunk(Chunk(c.names, c.actions, c.t_obs_s, c.dt_s, None))
    code, err = _run_cli(capsys, bag, "-o", tmp_path / "o")
    assert code == replay_cli.EXIT_BAD_INPUT and "pass --delay" in err


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="modes"):
        config(tmp_path, tmp_path, modes=("fast",))
    with pytest.raises(ValueError, match="betas"):
        config(tmp_path, tmp_path, betas=(-1.0,))
    assert replay_cli.main([str(tmp_path / "missing"), "--no-progress"]) == replay_cli.EXIT_BAD_INPUT


def test_error_bad_policy(run_bag, tmp_path, capsys):
    code, err = _run_cli(capsys, run_bag, "-o", tmp_path / "o", "--policy-param", "no_such_field=1")
    assert code == replay_cli.EXIT_BAD_INPUT and "cannot build policy 'sim'" in err and "no_such_field" in err
    code, err = _run_cli(capsys, run_bag, "-o", tmp_path / "o", "--policy", "pi05")
    assert code == replay_cli.EXIT_BAD_INPUT and "--checkpoint" in err


def test_error_byte_flipped_mcap(tmp_path, rollout, policy, capsys):
    """A corrupted bag (bytes flipped inside the MCAP file, at many places): never a traceback; an unreadable
    part is one error line and exit 2."""
    bag = write_run(tmp_path / "flipped", "mcap", rollout, names=policy.action_names)
    (mcap,) = bag.glob("*.mcap")
    clean = mcap.read_bytes()
    codes = []
    for where in np.linspace(0.02, 0.98, 13):
        data = bytearray(clean)
        i = int(len(data) * where)
        data[i : i + 64] = bytes(b ^ 0xFF for b in data[i : i + 64])
        mcap.write_bytes(bytes(data))
        code, err = _run_cli(capsys, bag, "-o", tmp_path / "o", "--max-switches", "1", "--modes", "stop",
                             "--beta", "10", "--figures", "0")  # fmt: skip
        assert code in (0, replay_cli.EXIT_BAD_INPUT), err
        if code:
            assert err.startswith("rtc-replay: error:") and "Traceback" not in err, err
        codes.append(code)
    assert codes.count(replay_cli.EXIT_BAD_INPUT) >= 3, codes
