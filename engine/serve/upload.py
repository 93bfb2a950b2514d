"""Garment uploads decoded safely: size and pixel-count limits read from the header *before*
anything is decoded (no decompression bombs), PNG and JPEG only, then validated as a garment
with :func:`engine.inputs.garment_image.load_garment_image`.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from engine.errors import InputError
from engine.inputs.garment_image import load_garment_image

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_SIDE", "decode_garment", "image_size"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""The largest garment upload accepted (bytes); larger bodies get 413."""
MAX_UPLOAD_SIDE = 4096
"""The longest side (pixels) an uploaded image may declare; garments are resized to 384 anyway."""

_PNG = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header, without decoding.

    Raises:
        InputError: not a PNG or JPEG, or a header that cannot be read.
    """
    if data[:8] == _PNG:
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InputError("image", "a PNG with an IHDR header", "a truncated PNG")
        return struct.unpack(">II", data[16:24])
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                break
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in _SOF:
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
        raise InputError("image", "a JPEG with a frame header", "a JPEG without one")
    raise InputError("image", "a PNG or JPEG image", "bytes of another kind")


def decode_garment(data: bytes) -> np.ndarray:
    """An uploaded image -> (H, W, 3|4) uint8 RGB(A), checked to be a usable garment.

    Raises:
        InputError: too large, not an 8-bit PNG/JPEG, undecodable, or no garment shape in it.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError("image", f"at most {MAX_UPLOAD_BYTES} bytes", f"{len(data)} bytes")
    width, height = image_size(data)
    if not (8 <= width <= MAX_UPLOAD_SIDE and 8 <= height <= MAX_UPLOAD_SIDE):
        raise InputError("image", f"sides in [8, {MAX_UPLOAD_SIDE}] pixels", f"{width}x{height}")
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint8 or raw.shape[:2] != (height, width):
        raise InputError("image", "an 8-bit PNG or JPEG that decodes", "an undecodable image")
    if raw.ndim == 2:
        rgba = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    elif raw.shape[2] == 4:
        rgba = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
    else:
        rgba = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    load_garment_image(rgba)  # InputError when no collar, shoulders and hem are found
    return rgba
