"""Camera images -> model inputs, byte for byte as openpi's inference path.

openpi's server resizes every camera with ``transforms.ResizeImages(224, 224)``, which is
``openpi_client.image_tools.resize_with_pad``: PIL bilinear on the uint8 image (keep the aspect ratio, the longer
side fits), pasted onto a black canvas at (⌊(W − w)/2⌋, ⌊(H − h)/2⌋), so the extra pixel of an odd padding goes
to the bottom/right. ``Observation.from_dict`` then maps uint8 to float32 as ``x / 255 · 2 − 1``; the model's own
``preprocess_observation`` resize never runs (the image is already 224²). We do the same with PIL itself, and
the uint8 -> [−1, 1] map as a 256-entry table computed with those NumPy float32 operations, so the conversion
can run on the device after one uint8 transfer and still give openpi's exact values.
"""

from __future__ import annotations

import numpy as np

# uint8 value -> float32 in [−1, 1], computed exactly as openpi's Observation.from_dict does (NumPy float32).
UINT8_TO_UNIT = np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0 * 2.0 - 1.0


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy image, got {type(image).__name__} {getattr(image, 'dtype', '')}")
    if image.ndim != 3 or image.shape[-1] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an image [h, w, 3], got shape {image.shape}")


def resized_shape(height_in: int, width_in: int, height: int, width: int) -> tuple[int, int]:
    """(h, w) of the resized image before padding: 480×640 into 224×224 -> (168, 224)."""
    ratio = max(width_in / width, height_in / height)
    return int(height_in / ratio), int(width_in / ratio)


def resize_with_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [h, w, 3] -> uint8 [height, width, 3]: openpi_client's resize_with_pad (PIL bilinear, black padding)."""
    from PIL import Image  # the pi05 extra

    _check_image(image)
    cur_h, cur_w = image.shape[:2]
    if (cur_h, cur_w) == (height, width):
        return image
    rh, rw = resized_shape(cur_h, cur_w, height, width)
    resized = Image.fromarray(image).resize((rw, rh), resample=Image.BILINEAR)
    canvas = Image.new(resized.mode, (width, height), 0)
    canvas.paste(resized, (max(0, int((width - rw) / 2)), max(0, int((height - rh) / 2))))
    return np.asarray(canvas)


def to_unit_range(image_uint8: np.ndarray) -> np.ndarray:
    """uint8 array -> float32 in [−1, 1] (openpi's ``x / 255 · 2 − 1``, exactly)."""
    return UINT8_TO_UNIT[image_uint8]


def to_model_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [h, w, 3] -> float32 [size, size, 3] in [−1, 1]."""
    return to_unit_range(resize_with_pad(image, size, size))
