"""Training a micro π0.5 on a synthetic dataset: the loss falls, a resumed run equals an uninterrupted one, and
the exported checkpoint drives ``load_pi05`` / ``Pi05Policy`` exactly as training saw the data."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_setup import HORIZON, compilation_cache, session_cache_dir, synthetic_config, train_config

from rtc_controller.policy.pi05 import load_pi05
from rtc_controller.policy.pi05.checkpoint import load_params
from rtc_controller.policy.pi05.params import flatten
from rtc_controller.app.policies import make_policy
from rtc_controller.train import checkpoints as ckpt
from rtc_controller.policy.pi05.policy_section import load_policy_section
from rtc_controller.train.export import read_record
from rtc_controller.train.loop import RunDirError, fit, make_eval_loss, validation_loss
from rtc_controller.train.norm_stats import action_chunks
from rtc_controller.train.objective import velocity
from rtc_controller.train.prepare import prepare_run
from rtc_controller.train.samples import step_observation
from rtc_controller.train.synthetic import write_synthetic_dataset

pytestmark = pytest.mark.slow
STEPS = 40


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run of STEPS steps, and one stopped at STEPS/2 and resumed."""
    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    write_synthetic_dataset(data, synthetic_config())
    with compilation_cache(session_cache_dir(tmp_path_factory)):
        full = fit(train_config(num_steps=STEPS), data, root / "full", progress=False, log=lambda _: None)
        half = fit(train_config(num_steps=STEPS), data, root / "resumed", stop_at=STEPS // 2, progress=False,
                   log=lambda _: None)
        resumed = fit(train_config(num_steps=STEPS), data, root / "resumed", resume=True, progress=False,
                      log=lambda _: None)
        yield {"root": root, "data": data, "full": full, "half": half, "resumed": resumed}


def _rows(run_dir):
    with open(run_dir / "loss.csv") as f:
        return [(int(r["step"]), r["split"], float(r["loss"])) for r in csv.DictReader(f)]


def test_loss_decreases(runs, tmp_path):
    rows = _rows(runs["full"].run_dir)
    train = [loss for _, split, loss in rows if split == "train"]
    assert len(train) == STEPS // 5 and all(np.isfinite(train))
    assert np.mean(train[-2:]) < 0.75 * np.mean(train[:2])
    # On held-out episodes: the trained (EMA) weights against the initial ones, same batches and noise.
    cfg = train_config(num_steps=STEPS)
    setup = prepare_run(cfg, runs["data"], tmp_path, log=lambda _: None)
    eval_fn = make_eval_loss(setup, cfg)
    before = validation_loss(eval_fn, jax.tree.map(jnp.asarray, setup.init_params), setup.val_set, cfg)
    after = validation_loss(eval_fn, jax.tree.map(jnp.asarray, runs["full"].params), setup.val_set, cfg)
    assert after < 0.75 * before
    assert runs["full"].val_loss == pytest.approx(after, rel=1e-5)


def test_resumed_run_equals_the_uninterrupted_one(runs):
    half, resumed, full = runs["half"], runs["resumed"], runs["full"]
    assert (half.completed, half.step) == (False, STEPS // 2)
    assert half.policy_file == resumed.policy_file  # the resumed run re-exported the same folder
    assert resumed.completed and resumed.step == full.step == STEPS
    a, b = flatten(full.params), flatten(resumed.params)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert _rows(resumed.run_dir) == _rows(full.run_dir)
    # Only the newest checkpoints stay, each complete; the half-way one was a resumable one.
    assert ckpt.complete_steps(resumed.run_dir) == [STEPS // 2, STEPS]


def test_checkpoint_round_trips_through_load_pi05(runs, tmp_path):
    full = runs["full"]
    section = load_policy_section(full.policy_file)
    model = load_pi05(section.checkpoint_dir, action_horizon=HORIZON, max_token_len=section.max_token_len,
                      dtype="float32", asset_id=section.asset_id)
    for k, v in flatten(full.params).items():
        np.testing.assert_array_equal(np.asarray(flatten(model.params)[k]), v, err_msg=k)
    saved = load_params(ckpt.step_dir(full.run_dir, STEPS) / "params")
    np.testing.assert_array_equal(flatten(saved)["action_out_proj/kernel"], flatten(full.params)["action_out_proj/kernel"])
    # The loaded model's velocity (prepare -> KV cache -> action expert) equals training's on a training batch.
    setup = prepare_run(train_config(num_steps=STEPS), runs["data"], tmp_path, log=lambda _: None)
    batch = setup.train_set.batch(np.arange(4))
    x = jnp.asarray(np.random.default_rng(0).normal(size=batch["actions"].shape), jnp.float32)
    t = jnp.asarray([0.95, 0.6, 0.3, 0.02])
    want = velocity(jax.tree.map(jnp.asarray, full.params), setup.model_config, batch, x, t)
    ctx = model.prepare(batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"])
    np.testing.assert_allclose(model.velocity(ctx, x, t), want, atol=1e-5, rtol=1e-5)


def test_the_exported_policy_sees_what_training_saw(runs, tmp_path):
    section = load_policy_section(runs["full"].policy_file)
    cfg = synthetic_config()
    assert section.camera_slots == cfg.cameras and section.action_horizon == HORIZON and section.dtype == "float32"
    assert section.cameras["base_0_rgb"].resolution == (cfg.image_height, cfg.image_width)
    record = read_record(runs["full"].policy_file.parent)
    assert record["trained_steps"] == f"{STEPS}/{STEPS}" and record["completed"]
    assert record["action_rate_hz"] == cfg.fps and record["prompt"] == cfg.prompts[0]
    # The inference node's path: policy_config plus its own action names.
    policy = make_policy("pi05", policy_config=str(runs["full"].policy_file), action_names=section.action_names)
    setup = prepare_run(train_config(num_steps=STEPS), runs["data"], tmp_path, log=lambda _: None)
    ts = setup.train_set
    for i in (0, 13, len(ts) - 1):
        ep = setup.dataset.load(int(ts.episode[i]))
        obs = step_observation(ep, int(ts.step[i]))  # raw camera frames, as the node receives them
        images, masks, tokens, token_mask = policy.model_inputs(obs)
        batch = ts.batch([i])
        for slot in images:
            np.testing.assert_array_equal(images[slot], batch["images"][slot], err_msg=slot)
            np.testing.assert_array_equal(masks[slot], batch["image_masks"][slot])
        np.testing.assert_array_equal(tokens, batch["tokens"])
        np.testing.assert_array_equal(token_mask, batch["token_mask"])
        chunk = action_chunks(ep.actions.astype(np.float64), HORIZON)[int(ts.step[i])]
        np.testing.assert_allclose(policy.to_model(chunk[None], obs), batch["actions"], atol=1e-6)
    actions = policy.infer(obs)
    assert actions.shape == (HORIZON, 14) and np.all(np.isfinite(actions))


def test_run_folder_rules(runs):
    data, root = runs["data"], runs["root"]
    with pytest.raises(RunDirError, match="--resume .* --overwrite"):
        fit(train_config(num_steps=STEPS), data, root / "full", progress=False, log=lambda _: None)
    changed = train_config(num_steps=STEPS)
    changed = type(changed)(**{**changed.__dict__, "optimizer": type(changed.optimizer)(peak_lr=1e-4)})
    with pytest.raises(ckpt.ResumeError, match="optimizer.peak_lr"):
        fit(changed, data, root / "full", resume=True, progress=False, log=lambda _: None)


def test_time_budget_stops_with_a_resumable_checkpoint(runs, tmp_path_factory):
    root = runs["root"]
    with compilation_cache(session_cache_dir(tmp_path_factory)):
        cfg = train_config(num_steps=STEPS, time_budget_s=1e-6)
        res = fit(cfg, runs["data"], root / "budget", progress=False, log=lambda _: None)
    assert not res.completed and res.step == 1
    assert ckpt.complete_steps(res.run_dir) == [1]
    assert read_record(res.policy_file.parent)["trained_steps"] == f"1/{STEPS}"  # usable at once
    assert load_policy_section(res.policy_file).action_horizon == HORIZON


def test_the_inference_node_parameters_alone_load_it(runs):
    """Without the policy section the node passes only checkpoint, tokenizer, H and action names (bf16, a
    200-token budget, no delta mask): the longer budget only adds masked padding and bf16 changes the chunk by
    rounding, but the delta dims stay relative to the state: the section is what makes them absolute."""
    section = load_policy_section(runs["full"].policy_file)
    exact = make_policy("pi05", policy_config=str(runs["full"].policy_file), action_names=section.action_names)
    node = make_policy("pi05", checkpoint_dir=section.checkpoint_dir, tokenizer_path=section.tokenizer_path,
                       action_horizon=HORIZON, action_names=section.action_names)
    assert node.model.config.dtype == "bfloat16" and node.model.config.max_token_len == 200
    from rtc_controller.train.dataset import EpisodeDataset

    ep = EpisodeDataset(runs["data"]).load(0)
    obs = step_observation(ep, 10)
    tokens, mask = node.model_inputs(obs)[2:]
    want_tokens, want_mask = exact.model_inputs(obs)[2:]
    n = want_tokens.shape[1]
    np.testing.assert_array_equal(tokens[:, :n], want_tokens)
    assert not mask[:, n:].any()
    delta = np.zeros(14)
    delta[: len(section.delta_action_mask)] = section.delta_action_mask
    a, b = node.infer(obs, seed=1) + delta * obs.state, exact.infer(obs, seed=1)
    stats = exact.model.norm_stats["actions"]  # bf16 rounding: within 2 % of each dim's [q01, q99] range
    assert np.all(np.abs(a - b) <= 0.02 * (stats.q99 - stats.q01) + 1e-4)
    assert np.all(np.abs(node.infer(obs, seed=1) - b)[:, delta > 0] > 0.05)  # without it: off by the state


def test_check_measures_chunk_errors(runs, capsys):
    from rtc_controller.train.cli import main
    from rtc_controller.train.dataset import EpisodeDataset
    from rtc_controller.train.evaluate import chunk_errors, position_groups

    ds = EpisodeDataset(runs["data"])
    assert position_groups(ds.info.action_names) == [[0, 1, 2], [7, 8, 9]]

    recorded = {}  # state -> the recorded chunk from that step
    for e in range(len(ds)):
        ep = ds.load(e, images=False)
        for t, chunk in enumerate(action_chunks(ep.actions.astype(np.float64), HORIZON)):
            recorded[ep.state[t].tobytes()] = chunk

    class Replay:  # a "policy" that returns the recorded chunk, 3 mm off in left_x for odd seeds
        action_names, horizon = ds.info.action_names, HORIZON

        def infer(self, obs, *, num_steps, seed):
            chunk = recorded[np.asarray(obs.state, np.float32).tobytes()].copy()
            chunk[:, 0] += 0.003 * (seed % 2)
            return chunk

    errs = chunk_errors(Replay(), ds, [0, 1], num_samples=4, k=2, seed=1)
    # Sample n draws seeds 1 + 2n (odd: 3 mm off on one of two arms -> 1.5 mm) and 2 + 2n (exact).
    np.testing.assert_allclose(errs.first_sample_mm, 1.5, atol=1e-4)
    np.testing.assert_allclose(errs.first_action_mm, 1.5, atol=1e-4)
    np.testing.assert_allclose(errs.best_of_k_mm, 0.0, atol=1e-6)
    assert main(["check", "--run", str(runs["full"].run_dir), "--data", str(runs["data"]), "--samples", "3",
                 "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "val episodes" in out and "3 steps: chunk position error median" in out
