"""Reading and writing openpi orbax parameter checkpoints (``<checkpoint_dir>/params``).

Both layouts openpi produces are read:
- released checkpoints: an orbax PyTree whose root key ``params`` holds the parameter tree;
- training checkpoints (``save_state``): the same, but every key path ends in ``value`` (nnx.State).
LoRA fine-tunes (``lora_a``/``lora_b`` next to a weight) are merged into the base weights on load, in float32,
by the rule of ``lora.py`` (derived from the forward pass's einsum equations).
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, Literal

import numpy as np

from rtc_controller.policy.pi05.gemma import EINSUM_EQUATIONS
from rtc_controller.policy.pi05.lora import LoraError, LoraSettings, find_lora_pairs, merge_lora
from rtc_controller.policy.pi05.params import Params, flatten, unflatten

logger = logging.getLogger(__name__)

Layout = Literal["released", "training"]


class CheckpointError(ValueError):
    """A checkpoint directory is missing, unreadable or not an openpi parameter checkpoint."""


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:  # pragma: no cover - orbax is in the pi05 extra
        raise ImportError("loading π0.5 checkpoints needs orbax-checkpoint (pip install '.[pi05]')") from e
    return ocp


def _strip_value_suffix(flat: dict[str, Any]) -> dict[str, Any]:
    if flat and all(k.rsplit("/", 1)[-1] == "value" for k in flat):
        return {k.rsplit("/", 1)[0]: v for k, v in flat.items()}
    return flat


def _float32_keys(flat_meta: dict[str, Any]) -> set[str]:
    """Checkpoint keys read in float32 whatever the requested dtype: LoRA factors and the weights they update."""
    keys = set(_strip_value_suffix(dict.fromkeys(flat_meta)))
    try:
        pairs = find_lora_pairs(keys, EINSUM_EQUATIONS)
    except LoraError:
        return set(keys)  # reported (with the key) when merging
    suffix = "/value" if flat_meta and next(iter(flat_meta)).endswith("/value") else ""
    return {k + suffix for p in pairs for k in (p.weight, p.a, p.b)}


def load_params(params_dir: str | pathlib.Path, *, dtype: str | None = None,
                lora: LoraSettings | None = None) -> Params:
    """Restore an openpi parameter checkpoint as a NumPy pytree (released or training layout, LoRA merged).

    dtype: cast while reading (as openpi's ``restore_params(dtype=bfloat16)``), halving host memory for bf16.
    LoRA factors and their weights are read in float32, merged there (``lora.merge_lora``, scaling ``lora``),
    and only then cast to ``dtype``.
    """
    params_dir = pathlib.Path(params_dir).absolute()  # orbax misreads a relative path's metadata
    if not params_dir.is_dir():
        raise CheckpointError(f"{params_dir}: no such directory (expected openpi's orbax 'params/' checkpoint)")
    ocp = _orbax()
    try:
        with ocp.PyTreeCheckpointer() as ckptr:
            meta = ckptr.metadata(params_dir)
            tree_meta = getattr(getattr(meta, "item_metadata", None), "tree", None) or meta
            wide = _float32_keys(flatten(tree_meta)) if dtype is not None else set()
            restore_args = unflatten({
                k: ocp.RestoreArgs(restore_type=np.ndarray, dtype="float32" if k in wide else dtype)
                for k in flatten(tree_meta)
            })  # fmt: skip
            restored = ckptr.restore(params_dir, ocp.args.PyTreeRestore(restore_args=restore_args))
    except Exception as e:  # orbax raises many types for unreadable/corrupt files
        raise CheckpointError(f"{params_dir}: cannot read the orbax checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(restored, dict):
        raise CheckpointError(f"{params_dir}: checkpoint root is {type(restored).__name__}, expected a dict")
    tree = restored.get("params", restored)
    if not isinstance(tree, dict) or not tree:
        raise CheckpointError(f"{params_dir}: checkpoint has no 'params' tree")
    flat = _strip_value_suffix(flatten(tree))
    try:
        pairs = find_lora_pairs(flat, EINSUM_EQUATIONS)
        cast = (lambda x: x.astype(dtype)) if dtype is not None else (lambda x: x)
        flat = merge_lora(flat, pairs, lora or LoraSettings(), cast=cast)
    except LoraError as e:
        raise CheckpointError(f"{params_dir}: {e}") from e
    return unflatten(flat)


def _map_tree(fn, tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _map_tree(fn, v) for k, v in tree.items()}
    return fn(tree)


def save_params(params_dir: str | pathlib.Path, params: Params, *, layout: Layout = "released") -> None:
    """Write ``params`` as openpi would (root key ``params``; ``training`` appends ``value`` to every key path)."""
    if layout not in ("released", "training"):
        raise ValueError(f"layout must be 'released' or 'training', got {layout!r}")
    tree = _map_tree(lambda x: np.asarray(x), params)
    if layout == "training":
        tree = _map_tree(lambda x: {"value": x}, tree)
    ocp = _orbax()
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(pathlib.Path(params_dir).absolute(), {"params": tree})
