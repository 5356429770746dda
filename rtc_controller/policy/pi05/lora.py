"""LoRA fine-tunes folded into their base weights, derived from the einsum equations of the forward pass.

openpi (``models/lora.py``) computes a LoRA layer at run time as two einsums built from the base equation
``lhs,rhs->out`` by relabelling the weight's last two axes (a, b) = (rhs[-2], rhs[-1]) with a rank label R::

    eqn_a = lhs , rhs[b -> R] -> out[b -> R]          (x · A)
    eqn_b = out[b -> R] , rhs[a -> R] -> out          (… · B)
    y = einsum(eqn, x, W) + s · einsum(eqn_b, einsum(eqn_a, x, A), B)

A label that ``eqn_a`` sums over and that reappears in ``B`` is summed a second, independent time in ``eqn_b``.
So the update that makes ``einsum(eqn, x, W + ΔW)`` equal to the two-step LoRA is, with those labels renamed
apart in B (``delta_equation``)::

    ΔW = s · einsum(rhs[b -> R] , rhs[a -> R, summed-in-eqn_a -> fresh] -> rhs, A, B)

Worked examples (openpi's Gemma equations):
- ``q_einsum`` ``BTD,NDH->BTNH``: eqn_a sums D only -> ΔW[n] = A[n] · B[n] (per head);
- ``attn_vec_einsum`` ``BTNH,NHD->BTD``: eqn_a sums N and H, and N reappears in B (``NRD``) ->
  ΔW[n] = A[n] · Σ_n' B[n'] (the B factor summed over heads);
- FeedForward ``gating_einsum`` ``BTD,CDF->CBTF`` and ``linear`` ``BTF,FD->BTD``: per C, plain A · B.

Scaling s: openpi's ``Einsum`` multiplies its LoRA term by ``alpha / rank`` (``alpha / sqrt(rank)`` with rsLoRA);
its ``FeedForward`` LoRA (``<name>_lora_a`` / ``<name>_lora_b`` beside the weight) is not scaled at all. Both
built-in variants (``gemma_2b_lora``: rank 16, ``gemma_300m_lora``: rank 32) use alpha = rank, i.e. s = 1.
Leading axes beyond the equation (the stacked layer axis of ``nn.scan``) are batch axes of the update.
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

EINSUM_LORA_A, EINSUM_LORA_B = "lora_a", "lora_b"  # openpi Einsum: <name>/{w, lora_a, lora_b}
FFN_LORA_A, FFN_LORA_B = "_lora_a", "_lora_b"  # openpi FeedForward: <weight>_lora_a beside <weight>
EINSUM_WEIGHT = "w"
ACTION_EXPERT_SUFFIX = "_1"  # openpi names expert 1's modules attn_1 / q_einsum_1 / mlp_1


class LoraError(ValueError):
    """LoRA factors that cannot be merged (unknown weight, shapes that do not fit the equation)."""


@dataclass(frozen=True)
class LoraScaling:
    """openpi ``LoRAConfig`` scaling of one expert's attention einsums: s = alpha/rank, or alpha/sqrt(rank) (rsLoRA).

    alpha None means alpha = rank (openpi's ``gemma_2b_lora`` and ``gemma_300m_lora``), so s = 1.
    """

    alpha: float | None = None
    rslora: bool = False

    def __post_init__(self) -> None:
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"LoRA alpha must be finite and > 0 (or None for alpha = rank), got {self.alpha!r}")

    def value(self, rank: int) -> float:
        """s for a factor of rank ``rank``; e.g. alpha 16, rank 16 -> 1.0; rsLoRA alpha 16, rank 16 -> 4.0."""
        alpha = float(rank) if self.alpha is None else float(self.alpha)
        return alpha / math.sqrt(rank) if self.rslora else alpha / rank


@dataclass(frozen=True)
class LoraSettings:
    """Scaling per expert (openpi ``Pi0Config.paligemma_variant`` / ``action_expert_variant`` LoRA configs)."""

    paligemma: LoraScaling = field(default_factory=LoraScaling)
    action_expert: LoraScaling = field(default_factory=LoraScaling)


def _split(eqn: str) -> tuple[str, str, str]:
    lhs_rhs, arrow, out = eqn.replace(" ", "").partition("->")
    lhs, comma, rhs = lhs_rhs.partition(",")
    if not arrow or not comma or "," in rhs or len(rhs) < 2:
        raise LoraError(f"unsupported einsum equation {eqn!r}: expected 'x,w->y' with a weight of >= 2 axes")
    return lhs, rhs, out


def _unused(labels: str, taken: str, n: int) -> str:
    free = [c for c in string.ascii_letters if c not in taken]
    if len(free) < n:
        raise LoraError(f"einsum equation with labels {labels!r} leaves no free label")
    return "".join(free[:n])


def lora_equations(eqn: str, *, rank_label: str | None = None) -> tuple[str, str]:
    """openpi's run-time LoRA equations (eqn_a, eqn_b) for base equation ``eqn``.

    >>> lora_equations("BTNH,NHD->BTD", rank_label="R")
    ('BTNH,NHR->BTR', 'BTR,NRD->BTD')
    """
    lhs, rhs, out = _split(eqn)
    label = rank_label or _unused(eqn, lhs + rhs + out, 1)
    if label in lhs + rhs + out:
        raise LoraError(f"rank label {label!r} already in {eqn!r}")
    a_label, b_label = rhs[-2], rhs[-1]
    a_rhs, a_out = rhs.replace(b_label, label), out.replace(b_label, label)
    return f"{lhs},{a_rhs}->{a_out}", f"{a_out},{rhs.replace(a_label, label)}->{out}"


def delta_equation(eqn: str) -> str:
    """The single einsum A, B -> ΔW that equals openpi's two-step LoRA (module docstring), with '...' batch axes.

    >>> delta_equation("BTNH,NHD->BTD")
    '...NHa,...baD->...NHD'
    """
    lhs, rhs, out = _split(eqn)
    taken = lhs + rhs + out
    label = _unused(taken, taken, 1)
    eqn_a, eqn_b = lora_equations(eqn, rank_label=label)
    (lhs_a, a_rhs), a_out = eqn_a.split("->")[0].split(","), eqn_a.split("->")[1]
    b_rhs = eqn_b.split("->")[0].split(",")[1]
    summed_in_a = {c for c in lhs_a + a_rhs if c not in a_out}
    fresh = iter(_unused(taken + label, taken + label, len(b_rhs)))
    b_rhs = "".join(next(fresh) if c in summed_in_a else c for c in b_rhs)
    return f"...{a_rhs},...{b_rhs}->...{rhs}"


def lora_delta(eqn: str, a: np.ndarray, b: np.ndarray, *, scale: float) -> np.ndarray:
    """ΔW (float32, the weight's shape) for factors A, B of a weight used as ``einsum(eqn, x, W)``."""
    a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return (scale * np.einsum(delta_equation(eqn), a32, b32)).astype(np.float32)


def _check_shapes(name: str, w_shape, a_shape, b_shape) -> int:
    """The rank, after checking A = W with axis −1 -> rank and B = W with axis −2 -> rank (openpi's shapes)."""
    rank = a_shape[-1] if a_shape else 0
    want_a = (*w_shape[:-1], rank)
    want_b = (*w_shape[:-2], rank, w_shape[-1])
    if len(w_shape) < 2 or tuple(a_shape) != want_a or tuple(b_shape) != want_b:
        raise LoraError(f"{name}: LoRA factors {tuple(a_shape)} / {tuple(b_shape)} do not fit weight "
                        f"{tuple(w_shape)} (expected {want_a} / {want_b})")
    return int(rank)


@dataclass(frozen=True)
class LoraPair:
    """One weight with LoRA factors: flat keys of W, A and B; the einsum equation; openpi's scaling kind."""

    weight: str
    a: str
    b: str
    equation: str
    scaled: bool  # Einsum LoRA (alpha/rank) vs FeedForward LoRA (unscaled)
    action_expert: bool


def find_lora_pairs(keys: Any, equations: Mapping[str, str]) -> list[LoraPair]:
    """Every LoRA factor pair among flat parameter ``keys`` ("a/b/c"), matched to its weight and equation.

    ``equations``: weight name without the expert suffix -> the einsum the forward pass applies it with.
    Raises LoraError for a factor without its partner or without a known equation.
    """
    keys = set(keys)
    pairs = []
    for key in sorted(keys):
        parent, _, leaf = key.rpartition("/")
        if leaf == EINSUM_LORA_A:  # Einsum: <module>/lora_a -> <module>/w
            module = parent.rpartition("/")[2]
            pair = (f"{parent}/{EINSUM_WEIGHT}", key, f"{parent}/{EINSUM_LORA_B}", module, True)
        elif leaf.endswith(FFN_LORA_A):  # FeedForward: <mlp>/<weight>_lora_a -> <mlp>/<weight>
            module = parent.rpartition("/")[2]
            base = leaf[: -len(FFN_LORA_A)]
            pair = (f"{parent}/{base}", key, f"{parent}/{base}{FFN_LORA_B}", base, False)
        else:
            continue
        weight, a, b, name, scaled = pair
        expert = module.endswith(ACTION_EXPERT_SUFFIX)
        bare = name.removesuffix(ACTION_EXPERT_SUFFIX) if scaled else name
        if weight not in keys or b not in keys:
            raise LoraError(f"{a}: LoRA factor without its weight {weight!r} or partner {b!r}")
        if bare not in equations:
            raise LoraError(f"{a}: LoRA on {bare!r}, which has no known einsum equation "
                            f"(known: {sorted(equations)})")
        pairs.append(LoraPair(weight, a, b, equations[bare], scaled, expert))
    orphans = [k for k in keys if k.endswith((f"/{EINSUM_LORA_B}", FFN_LORA_B))
               and not any(k == p.b for p in pairs)]
    if orphans:
        raise LoraError(f"{orphans[0]}: LoRA factor B without its A")
    return pairs


def merge_lora(flat: dict[str, Any], pairs: list[LoraPair], settings: LoraSettings,
               *, cast: Callable[[np.ndarray], Any] = lambda x: x) -> dict[str, Any]:
    """Flat params with every pair folded in float32 (W + ΔW), then ``cast``; the factors are dropped."""
    out = dict(flat)
    for p in pairs:
        w = np.asarray(flat[p.weight], np.float32)
        rank = _check_shapes(p.weight, w.shape, np.shape(flat[p.a]), np.shape(flat[p.b]))
        scaling = settings.action_expert if p.action_expert else settings.paligemma
        scale = scaling.value(rank) if p.scaled else 1.0
        out[p.weight] = cast(w + lora_delta(p.equation, flat[p.a], flat[p.b], scale=scale))
        del out[p.a], out[p.b]
    if pairs:
        logger.info("merged %d LoRA pairs in float32 (paligemma %s, action expert %s)", len(pairs),
                    settings.paligemma, settings.action_expert)
    return out
