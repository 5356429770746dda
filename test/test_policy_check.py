"""rtc-policy-check: observations exported from a recorded bag, "openpi" actions computed by a reference written
here the way openpi computes them (the lab's Inputs/Outputs for config/policy/pi05_state_absolute.yaml, Normalize,
PIL resize, the π0.5 prompt, an uncached joint pass per Euler step), then compared: the node's path passes; a
perturbed action dim or a reference trained without the state in the prompt fails, naming the dim."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.control.chunk import Chunk
from rtc_controller.policy.pi05 import IMAGE_KEYS, NormStats, load_policy_section, save_policy_section
from rtc_controller.policy.pi05.model import load_pi05
from rtc_controller.policy.pi05.testing import tiny_config, write_checkpoint, write_tokenizer
from rtc_controller.tools import policy_check
from rtc_controller.bags.bag_writer import BagWriter
from rtc_controller.tools.parity_io import load_record, save_record

NAMES = action_names("cartesian")
H, DT_S, N_CHUNKS, MAX_TOKENS = 4, 0.05, 3, 64
PROMPT = "fold the towel"
RNG_STATS = np.random.default_rng(3)
Q01 = -1.0 + RNG_STATS.uniform(-0.2, 0.2, 16)
Q99 = 1.0 + RNG_STATS.uniform(-0.2, 0.2, 16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny float32 checkpoint + tokenizer, the shipped absolute-action section pointed at them, and a bag."""
    pytest.importorskip("sentencepiece")
    root = tmp_path_factory.mktemp("parity")
    stats = NormStats(mean=np.zeros(16), std=np.ones(16), q01=Q01, q99=Q99)
    write_checkpoint(root / "ckpt", tiny_config(action_dim=16, max_token_len=MAX_TOKENS),
                     norm_stats={"state": stats, "actions": stats}, asset_id="flexiv_bimanual")
    spm = write_tokenizer(root / "tok.model", state_dim=16)
    section = load_policy_section("pi05_state_absolute", checkpoint_dir=str(root / "ckpt"), tokenizer_path=str(spm),
                                  dtype="float32", max_token_len=MAX_TOKENS, action_horizon=H)
    section_path = save_policy_section(root / "section.yaml", section)
    rng = np.random.default_rng(0)
    bag = root / "bag"
    with BagWriter(bag, storage="mcap") as w:
        w.write_prompt(PROMPT, int(9.0e9))
        for j in range(N_CHUNKS):
            t_obs = 10.0 + j * DT_S * 2
            state = np.concatenate([[0.5, 0.0, 0.3], rng.uniform(-1, 1, 3), [0.04], [0.4, 0.1, 0.2],
                                    rng.uniform(-1, 1, 3), [0.06]])
            w.write_state(state, NAMES, t_obs)
            for slot in IMAGE_KEYS:
                w.write_image(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), t_obs - 0.01,
                              topic=topics.camera_topic(slot))
            w.write_chunk(Chunk(NAMES, np.tile(state, (H, 1)), t_obs, DT_S, None), log_time_ns=int((t_obs + 0.1) * 1e9))
    return section_path, bag, root


def _quat_wxyz(rv):
    angle = np.linalg.norm(rv)
    q = np.array([1.0, 0, 0, 0]) if angle < 1e-12 else np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * rv / angle])
    return q if q[0] >= 0 else -q


def _pil_resize_with_pad(img, size=224):
    h, w = img.shape[:2]
    ratio = max(w / size, h / size)
    rh, rw = int(h / ratio), int(w / ratio)
    canvas = Image.new("RGB", (size, size), 0)
    canvas.paste(Image.fromarray(img).resize((rw, rh), resample=Image.BILINEAR), (int((size - rw) / 2), int((size - rh) / 2)))
    return np.asarray(canvas)


def openpi_reference(model, joint, sp, record, *, state_in_prompt=True) -> np.ndarray:
    """What openpi's Policy.infer returns for this record under the lab's config (written independently)."""
    s = record.observation.state
    state = np.concatenate([s[0:3], _quat_wxyz(s[3:6]), [s[6] / 0.1], s[7:10], _quat_wxyz(s[10:13]), [s[13] / 0.1]])
    norm = (state - Q01) / (Q99 - Q01 + 1e-6) * 2.0 - 1.0
    if state_in_prompt:
        bins = np.digitize(norm, bins=np.linspace(-1, 1, 257)[:-1]) - 1
        ids = sp.encode(f"Task: {PROMPT}, State: {' '.join(map(str, bins))};\nAction: ", add_bos=True)
    else:
        ids = sp.encode(PROMPT, add_bos=True) + sp.encode("\n")
    tokens = np.zeros((1, MAX_TOKENS), np.int32)
    tokens[0, :len(ids)] = ids
    mask = np.arange(MAX_TOKENS)[None] < len(ids)
    images, masks = {}, {}
    for slot in IMAGE_KEYS:
        frame = record.observation.images.get(slot)
        valid = frame is not None
        frame = _pil_resize_with_pad(frame) if valid else np.zeros((224, 224, 3), np.uint8)
        images[slot] = (frame.astype(np.float32) / 255.0 * 2.0 - 1.0)[None]
        masks[slot] = np.array([valid])
    x, t, dt = jnp.asarray(record.noise[None]), 1.0, -1.0 / 10
    while t >= -dt / 2:
        x = x + dt * joint(images, masks, tokens, mask, x, jnp.float32(t))
        t += dt
    actions = (np.asarray(x[0], np.float64)[:, :16] + 1.0) / 2.0 * (Q99 - Q01 + 1e-6) + Q01
    return actions


def _fill(records_dir, out_dir, reference, **kw):
    paths = []
    for path in sorted(records_dir.glob("*.npz")):
        rec = load_record(path)
        filled = type(rec)(rec.observation, rec.state_names, rec.noise, reference(rec, **kw))
        paths.append(str(save_record(out_dir / path.name, filled)))
    return paths


@pytest.mark.slow  # a tiny π0.5 per record: the node's path and 10 uncached reference passes (~30 s)
def test_export_then_compare_passes_and_catches_mismatches(setup, tmp_path, capsys):
    section, bag, root = setup
    base = ["--policy-config", str(section)]
    assert policy_check.main([*base, "--bag", str(bag), "--export", str(tmp_path / "rec"),
                              "--max-observations", "2"]) == policy_check.EXIT_OK
    exported = sorted((tmp_path / "rec").glob("*.npz"))
    assert len(exported) == 2
    rec = load_record(exported[0])
    assert rec.actions is None and rec.noise.shape == (H, 16) and set(rec.observation.images) == set(IMAGE_KEYS)
    assert rec.observation.prompt == PROMPT and rec.state_names == NAMES

    model = load_pi05(root / "ckpt", action_horizon=H, max_token_len=MAX_TOKENS, dtype="float32")
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(root / "tok.model"))
    joint, cache = jax.jit(model.forward_joint), {}

    def ref(r, state_in_prompt=True):
        key = (r.observation.stamp_s, state_in_prompt)
        if key not in cache:
            cache[key] = openpi_reference(model, joint, sp, r, state_in_prompt=state_in_prompt)
        return cache[key].copy()

    capsys.readouterr()
    good = _fill(tmp_path / "rec", tmp_path / "good", ref)
    assert policy_check.main([*base, "--npz", *good, "--json", str(tmp_path / "r.json")]) == policy_check.EXIT_OK
    printed = capsys.readouterr().out
    assert "PASS" in printed and "left_rz" in printed
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pass"] and all(d["max_abs"] < 1e-3 * d["range"] for r in report["records"] for d in r["dims"])

    def shifted(r):  # openpi's left_y 5 % of its range away
        a = ref(r)
        a[:, 1] += 0.05 * (Q99[1] - Q01[1])
        return a

    bad = _fill(tmp_path / "rec", tmp_path / "bad", shifted)
    assert policy_check.main([*base, "--npz", *bad]) == policy_check.EXIT_FAIL
    assert "FAIL: worst max |Δ|/range 0.05 on left_y" in capsys.readouterr().out
    no_state = _fill(tmp_path / "rec", tmp_path / "nostate", ref, state_in_prompt=False)  # a pi05_libero-style fine-tune
    assert policy_check.main([*base, "--npz", *no_state]) == policy_check.EXIT_FAIL
    assert "FAIL" in capsys.readouterr().out


def test_bad_inputs_exit_2_with_the_reason(setup, tmp_path, capsys):
    section, _, _ = setup
    rec = tmp_path / "r.npz"
    np.savez(rec, state=np.zeros(14), state_names=np.asarray(NAMES), prompt=np.asarray("x"),
             noise=np.zeros((H + 1, 16), np.float32), actions=np.zeros((H + 1, 16)))
    assert policy_check.main(["--policy-config", str(section), "--npz", str(rec)]) == policy_check.EXIT_BAD_INPUT
    assert f"noise is [{H + 1}, 16] but the policy section's action_horizon is {H}" in capsys.readouterr().err
    assert policy_check.main(["--policy-config", str(section), "--set", "dtpye=float32", "--npz", str(rec)]) == 2
    assert "did you mean 'dtype'" in capsys.readouterr().err
    assert policy_check.main(["--npz", str(rec)]) == 2
    assert "no policy section" in capsys.readouterr().err
    from rtc_controller.config_files import config_path

    assert policy_check.main(["--config", str(config_path("twin.yaml")), "--npz", str(rec)]) == 2
    err = capsys.readouterr().err
    assert "inference_node has policy 'twin_expert' and no policy_config" in err and "--policy-config" in err
    assert math.isclose(policy_check.ROTATION_RANGE_RAD, math.pi)


def test_an_export_without_camera_frames_warns(setup, tmp_path, capsys):
    from rtc_controller.control.chunk import Chunk
    from rtc_controller.bags.bag_writer import BagWriter

    import yaml

    original, _, _ = setup
    data = yaml.safe_load(original.read_text())
    data["cameras"] = {}  # no cameras in the section: the export takes whatever camera topics the bag has
    section = original.parent / "no_camera_topics.yaml"
    section.write_text(yaml.safe_dump(data))
    bag = tmp_path / "nocams"
    with BagWriter(bag, storage="mcap") as w:
        for k in range(4):
            w.write_state(np.zeros(len(NAMES)), NAMES, 10.0 + 0.02 * k, log_time_ns=int((10.0 + 0.02 * k) * 1e9))
        w.write_chunk(Chunk(NAMES, np.zeros((H, len(NAMES))), 10.04, 0.02, None), log_time_ns=int(10.1e9))
    code = policy_check.main(["--policy-config", str(section), "--bag", str(bag), "--export", str(tmp_path / "rec")])
    assert code == policy_check.EXIT_OK
    assert "has no frame for camera(s)" in capsys.readouterr().err
