"""Camera images -> model inputs: resize-with-pad to the model resolution, uint8 -> float32 in [−1, 1].

``resize_with_pad`` replicates openpi's (tf.image.resize_with_pad): keep the aspect ratio, bilinear resize
(jax.image.resize, antialiased) so the longer side fits, round back to uint8, pad symmetrically with black
(the extra pixel of an odd padding goes to the bottom/right).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _resize_uint8(image, h: int, w: int, pad_h0: int, pad_w0: int, out: int) -> jax.Array:
    resized = jax.image.resize(image.astype(jnp.float32), (h, w, image.shape[-1]), method="linear")
    resized = jnp.round(resized).clip(0, 255).astype(jnp.uint8)
    return jnp.pad(resized, ((pad_h0, out - h - pad_h0), (pad_w0, out - w - pad_w0), (0, 0)))


def resize_with_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [h, w, 3] -> uint8 [height, width, 3] without distortion (black padding)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy image, got {type(image).__name__} {getattr(image, 'dtype', '')}")
    if image.ndim != 3 or image.shape[-1] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an image [h, w, 3], got shape {image.shape}")
    cur_h, cur_w = image.shape[:2]
    if (cur_h, cur_w) == (height, width):
        return image
    if height != width:
        raise ValueError("only square targets are supported")
    ratio = max(cur_w / width, cur_h / height)
    rh, rw = int(cur_h / ratio), int(cur_w / ratio)
    return np.asarray(_resize_uint8(image, rh, rw, (height - rh) // 2, (width - rw) // 2, height))


def to_model_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [h, w, 3] -> float32 [size, size, 3] in [−1, 1]."""
    return resize_with_pad(image, size, size).astype(np.float32) / 255.0 * 2.0 - 1.0
