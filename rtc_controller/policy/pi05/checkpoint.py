"""Reading and writing openpi orbax parameter checkpoints (``<checkpoint_dir>/params``).

Both layouts openpi produces are read:
- released checkpoints: an orbax PyTree whose root key ``params`` holds the parameter tree;
- training checkpoints (``save_state``): the same, but every key path ends in ``value`` (nnx.State).
LoRA fine-tunes (``lora_a``/``lora_b`` next to a weight) are merged into the base weights on load.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, Literal

import numpy as np

from rtc_controller.policy.pi05.params import Params, flatten, unflatten

logger = logging.getLogger(__name__)

Layout = Literal["released", "training"]
# openpi's LoRA configs use alpha == rank, i.e. a scaling of 1 for the attention einsums; the FFN LoRA has none.
DEFAULT_LORA_SCALING = 1.0


class CheckpointError(ValueError):
    """A checkpoint directory is missing, unreadable or not an openpi parameter checkpoint."""


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:  # pragma: no cover - orbax is in the pi05 extra
        raise ImportError("loading π0.5 checkpoints needs orbax-checkpoint (pip install '.[pi05]')") from e
    return ocp


def _strip_value_suffix(tree: Params) -> Params:
    flat = flatten(tree)
    if flat and all(k.rsplit("/", 1)[-1] == "value" for k in flat):
        return unflatten({k.rsplit("/", 1)[0]: v for k, v in flat.items()})
    return tree


def merge_lora(params: Params, *, scaling: float = DEFAULT_LORA_SCALING) -> Params:
    """Fold LoRA factors into their base weights: W += s · A @ B (batched over leading axes)."""
    flat = flatten(params)
    out = {k: v for k, v in flat.items() if "lora" not in k.rsplit("/", 1)[-1]}
    merged = 0
    for key in list(flat):
        leaf = key.rsplit("/", 1)[-1]
        if leaf == "lora_a":  # Einsum: <name>/{w, lora_a, lora_b}
            base, s = key.rsplit("/", 1)[0] + "/w", scaling
            b_key = key[: -len("lora_a")] + "lora_b"
        elif leaf.endswith("_lora_a"):  # FeedForward: gating_einsum_lora_a, linear_lora_a
            base, s = key[: -len("_lora_a")], 1.0
            b_key = key[: -len("_lora_a")] + "_lora_b"
        else:
            continue
        a, b = np.asarray(flat[key], np.float32), np.asarray(flat[b_key], np.float32)
        w = np.asarray(out[base], np.float32)
        out[base] = (w + s * np.matmul(a, b)).astype(flat[base].dtype)
        merged += 1
    if merged:
        logger.info("merged %d LoRA weight pairs (attention scaling %.3g)", merged, scaling)
    return unflatten(out)


def load_params(params_dir: str | pathlib.Path, *, dtype: str | None = None) -> Params:
    """Restore an openpi parameter checkpoint as a NumPy pytree (released or training layout, LoRA merged).

    dtype: cast while reading (as openpi's ``restore_params(dtype=bfloat16)``), halving host memory for bf16.
    """
    params_dir = pathlib.Path(params_dir)
    if not params_dir.is_dir():
        raise CheckpointError(f"{params_dir}: no such directory (expected openpi's orbax 'params/' checkpoint)")
    ocp = _orbax()
    try:
        with ocp.PyTreeCheckpointer() as ckptr:
            meta = ckptr.metadata(params_dir)
            tree_meta = getattr(getattr(meta, "item_metadata", None), "tree", None) or meta
            restore_args = _map_tree(lambda _: ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype), tree_meta)
            restored = ckptr.restore(params_dir, ocp.args.PyTreeRestore(restore_args=restore_args))
    except Exception as e:  # orbax raises many types for unreadable/corrupt files
        raise CheckpointError(f"{params_dir}: cannot read the orbax checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(restored, dict):
        raise CheckpointError(f"{params_dir}: checkpoint root is {type(restored).__name__}, expected a dict")
    tree = restored.get("params", restored)
    if not isinstance(tree, dict) or not tree:
        raise CheckpointError(f"{params_dir}: checkpoint has no 'params' tree")
    return merge_lora(_strip_value_suffix(tree))


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
