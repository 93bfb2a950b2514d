"""Garment uploads: header-first size checks, PNG/JPEG decoding, garment validation."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from engine.errors import InputError
from engine.sample_media import read_sample_garment
from engine.serve.upload import MAX_UPLOAD_BYTES, decode_garment, image_size


def _png(rgba: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert ok
    return data.tobytes()


def test_sample_garment_png_decodes_to_the_same_pixels():
    garment = read_sample_garment()
    out = decode_garment(_png(garment))
    assert out.shape == garment.shape and np.array_equal(out, garment)


def test_jpeg_garment_on_plain_background_is_accepted():
    garment = read_sample_garment()
    alpha = garment[..., 3:4].astype(np.float32) / 255
    flat = (garment[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)  # on white
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(flat, cv2.COLOR_RGB2BGR))
    assert ok and image_size(data.tobytes()) == (garment.shape[1], garment.shape[0])
    assert decode_garment(data.tobytes()).shape == (*garment.shape[:2], 3)


def test_header_declaring_a_huge_image_is_refused_before_decoding():
    # A valid PNG signature and IHDR declaring 100000 x 100000 pixels, nothing else.
    ihdr = struct.pack(">II5B", 100_000, 100_000, 8, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
    data += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    assert image_size(data) == (100_000, 100_000)
    with pytest.raises(InputError, match="sides in"):
        decode_garment(data)


@pytest.mark.parametrize(
    "data", [b"hello, not an image", b"GIF89a" + bytes(64), b"\x89PNG\r\n\x1a\n" + bytes(4)]
)
def test_non_images_raise_input_error(data):
    with pytest.raises(InputError):
        decode_garment(data)


def test_truncated_png_body_raises_input_error():
    data = _png(read_sample_garment())
    with pytest.raises(InputError, match="decodes"):
        decode_garment(data[: len(data) // 3])


def test_image_without_a_garment_shape_raises_input_error():
    blank = np.full((64, 64, 3), 200, np.uint8)
    with pytest.raises(InputError, match="garment"):
        decode_garment(_png(np.dstack([blank, np.full((64, 64), 255, np.uint8)])))


def test_oversized_body_raises_input_error():
    with pytest.raises(InputError, match="at most"):
        decode_garment(b"\x89PNG" + bytes(MAX_UPLOAD_BYTES))
