"""LoRA fine-tunes load to openpi's velocities: factors on every einsum of both experts, merged on load, against
the same model with each update folded in by openpi's own run-time equations (two einsums, ``lora.py``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.pi05 import IMAGE_KEYS, Pi05Model, load_pi05
from rtc_controller.policy.pi05.checkpoint import CheckpointError, load_params, save_params
from rtc_controller.policy.pi05.gemma import EINSUM_EQUATIONS
from rtc_controller.policy.pi05.lora import LoraScaling, LoraSettings, delta_equation, lora_equations
from rtc_controller.policy.pi05.model import cast_params
from rtc_controller.policy.pi05.params import flatten, random_params, unflatten
from rtc_controller.policy.pi05.testing import tiny_config

RANKS = {False: 3, True: 2}  # PaliGemma, action expert: different ranks, so alpha/rank differs per expert
FACTOR_STD = 0.3
LAYERS = "PaliGemma/llm/layers"


def openpi_lora_equations(eqn: str) -> tuple[str, str]:
    """openpi ``Einsum._make_lora_eqns``, in this test's own words: the weight's last two labels -> R."""
    lhs, rest = eqn.split(",")
    rhs, out = rest.split("->")
    a_label, b_label = rhs[-2], rhs[-1]
    a_out = out.replace(b_label, "R")
    return f"{lhs},{rhs.replace(b_label, 'R')}->{a_out}", f"{a_out},{rhs.replace(a_label, 'R')}->{out}"


def fold_by_probe(eqn: str, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """ΔW with einsum(eqn, x, ΔW) == scale·einsum(eqn_b, einsum(eqn_a, x, A), B) for every x, read off by applying
    openpi's two run-time einsums to one-hot inputs over the axes x shares with W (one layer: no leading axis)."""
    eqn_a, eqn_b = openpi_lora_equations(eqn)
    lhs, rest = eqn.split(",")
    rhs, out = rest.split("->")
    sizes = {c: n for c, n in zip(rhs[:-1], a.shape[:-1])} | {rhs[-1]: b.shape[-1]}
    shared = "".join(c for c in lhs if c in rhs)
    batch0, *others = [c for c in lhs if c not in rhs]
    n = int(np.prod([sizes[c] for c in shared]))
    x = np.eye(n, dtype=np.float64).reshape(n, *(sizes[c] for c in shared), *(1 for _ in others))
    labels = batch0 + shared + "".join(others)
    x = x.transpose([labels.index(c) for c in lhs])
    y = scale * np.einsum(eqn_b, np.einsum(eqn_a, x, a.astype(np.float64)), b.astype(np.float64))
    labels = out
    for o in others:
        y, labels = np.take(y, 0, axis=labels.index(o)), labels.replace(o, "")
    y = np.moveaxis(y, labels.index(batch0), 0)
    labels = batch0 + labels.replace(batch0, "")
    y = y.reshape(*(sizes[c] for c in shared), *y.shape[1:])
    labels = shared + labels[1:]
    return y.transpose([labels.index(c) for c in rhs])


def _lora_targets(flat: dict) -> list[tuple[str, str, str, bool, bool]]:
    """(weight key, A key, B key, scaled Einsum LoRA?, action expert?) for every einsum of both experts."""
    out = []
    for key in flat:
        if not key.startswith(LAYERS):
            continue
        parent, leaf = key.rsplit("/", 1)
        module = parent.rsplit("/", 1)[-1]
        if parent.startswith(f"{LAYERS}/attn/") and leaf == "w":
            out.append((key, f"{parent}/lora_a", f"{parent}/lora_b", True, module.endswith("_1")))
        elif leaf in ("gating_einsum", "linear"):
            out.append((key, f"{key}_lora_a", f"{key}_lora_b", False, module.endswith("_1")))
    return out


def _equation(weight_key: str) -> str:
    parent, leaf = weight_key.rsplit("/", 1)
    name = parent.rsplit("/", 1)[-1] if leaf == "w" else leaf
    return EINSUM_EQUATIONS[name.removesuffix("_1")]


def _lora_checkpoint(tmp_path, cfg, settings: LoraSettings, seed=0):
    """Writes base weights + random factors (training layout); returns (base flat, openpi-folded flat)."""
    base = dict(flatten(random_params(cfg, seed=seed, dtype="float32", on_device=False)))
    rng = np.random.default_rng(seed + 1)
    with_lora, folded = dict(base), dict(base)
    targets = _lora_targets(base)
    for w_key, a_key, b_key, scaled, expert in targets:
        w, rank = base[w_key], RANKS[expert]
        a = (FACTOR_STD * rng.standard_normal((*w.shape[:-1], rank))).astype(np.float32)
        b = (FACTOR_STD * rng.standard_normal((*w.shape[:-2], rank, w.shape[-1]))).astype(np.float32)
        with_lora[a_key], with_lora[b_key] = a, b
        scaling = settings.action_expert if expert else settings.paligemma
        scale = scaling.value(rank) if scaled else 1.0
        delta = np.stack([fold_by_probe(_equation(w_key), a[i], b[i], scale) for i in range(w.shape[0])])
        folded[w_key] = (w.astype(np.float64) + delta).astype(np.float32)
    assert len(targets) == 2 * (5 if cfg.llm.num_kv_heads != cfg.llm.num_heads else 4)  # q, kv (or qkv), out, gate, down
    save_params(tmp_path / "params", unflatten(with_lora), layout="training")
    return base, folded


def _velocity(model: Pi05Model, seed=0) -> np.ndarray:
    cfg = model.config
    rng = np.random.default_rng(seed)
    size = cfg.siglip.image_size
    images = {k: rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32) for k in IMAGE_KEYS}
    masks = {k: np.ones(1, bool) for k in IMAGE_KEYS}
    tokens = rng.integers(1, cfg.vocab_size, (1, cfg.max_token_len)).astype(np.int32)
    token_mask = np.arange(cfg.max_token_len)[None] < 13
    x = rng.standard_normal((1, cfg.action_horizon, cfg.action_dim)).astype(np.float32)
    ctx = model.prepare(images, masks, tokens, token_mask)
    return np.asarray(jax.jit(model.velocity)(ctx, jnp.asarray(x), jnp.float32(0.7)))


def test_equations_follow_openpis_relabelling():
    assert lora_equations("BTNH,NHD->BTD", rank_label="R") == openpi_lora_equations("BTNH,NHD->BTD")
    assert lora_equations("BSD,CKDH->CBSKH", rank_label="R") == ("BSD,CKDR->CBSKR", "CBSKR,CKRH->CBSKH")
    # attn_vec: the heads summed by x·A reappear in B and are summed again on their own -> B summed over heads
    assert delta_equation("BTNH,NHD->BTD") == "...NHa,...baD->...NHD"
    assert delta_equation("BTD,NDH->BTNH") == "...NDa,...NaH->...NDH"  # q: per head


@pytest.mark.slow  # two tiny models, each compiled once (~10 s)
@pytest.mark.parametrize("num_kv_heads", [1, 4])  # grouped q/kv einsums, and the fused qkv einsum (N == K)
def test_lora_checkpoint_gives_openpis_velocity(tmp_path, num_kv_heads):
    cfg = tiny_config(num_kv_heads=num_kv_heads, dtype="float32")
    settings = LoraSettings(paligemma=LoraScaling(alpha=6.0), action_expert=LoraScaling(alpha=3.0, rslora=True))
    base, folded = _lora_checkpoint(tmp_path, cfg, settings)
    loaded = load_pi05(tmp_path, action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len,
                       dtype="float32", lora=settings)
    reference = Pi05Model(cfg, cast_params(unflatten(folded), "float32"))
    v, v_ref = _velocity(loaded), _velocity(reference)
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-5)
    # the update matters, and the per-head merge of the attention output (A[n]·B[n]) would be wrong
    assert np.abs(v - _velocity(Pi05Model(cfg, cast_params(unflatten(base), "float32")))).max() > 1e-2
    per_head = dict(folded)
    raw = flatten(load_params_raw(tmp_path))
    for i in ("", "_1"):
        key = f"{LAYERS}/attn/attn_vec_einsum{i}"
        a, b = raw[f"{key}/lora_a/value"], raw[f"{key}/lora_b/value"]
        scaling = settings.action_expert if i else settings.paligemma
        per_head[f"{key}/w"] = base[f"{key}/w"] + scaling.value(a.shape[-1]) * np.matmul(a, b)
    v_wrong = _velocity(Pi05Model(cfg, cast_params(unflatten(per_head), "float32")))
    assert np.abs(v_wrong - v_ref).max() > 1e-2


def load_params_raw(ckpt_dir):
    import orbax.checkpoint as ocp

    with ocp.PyTreeCheckpointer() as c:
        return c.restore((ckpt_dir / "params").absolute())["params"]


def test_default_scaling_is_alpha_equals_rank_and_merge_is_float32_before_bf16(tmp_path):
    cfg = tiny_config()
    base, folded = _lora_checkpoint(tmp_path, cfg, LoraSettings())
    assert LoraScaling().value(16) == 1.0 and LoraScaling(alpha=16, rslora=True).value(16) == 4.0
    merged = flatten(load_params(tmp_path / "params", dtype="bfloat16"))
    assert not any("lora" in k for k in merged)
    for key in (f"{LAYERS}/attn/attn_vec_einsum_1/w", f"{LAYERS}/mlp/linear", f"{LAYERS}/attn/q_einsum/w"):
        assert merged[key].dtype == jnp.bfloat16
        want = folded[key].astype(jnp.bfloat16).astype(np.float32)
        np.testing.assert_allclose(merged[key].astype(np.float32), want, rtol=0, atol=np.abs(want).max() * 2**-7)
        assert np.mean(merged[key].astype(np.float32) == want) > 0.95  # one rounding, from the float32 sum
    untouched = f"{LAYERS}/pre_attention_norm/scale"
    assert merged[untouched].dtype == jnp.bfloat16


def test_bad_factors_are_refused_with_the_key(tmp_path):
    cfg = tiny_config()
    flat = dict(flatten(random_params(cfg, seed=0, dtype="float32", on_device=False)))
    w = flat[f"{LAYERS}/attn/q_einsum/w"]
    flat[f"{LAYERS}/attn/q_einsum/lora_a"] = np.zeros((*w.shape[:-1], 2), np.float32)
    flat[f"{LAYERS}/attn/q_einsum/lora_b"] = np.zeros((*w.shape[:-2], 3, w.shape[-1]), np.float32)
    save_params(tmp_path / "params", unflatten(flat))
    with pytest.raises(CheckpointError, match="q_einsum/w: LoRA factors"):
        load_params(tmp_path / "params")
    with pytest.raises(ValueError, match="alpha"):
        LoraScaling(alpha=-1.0)
