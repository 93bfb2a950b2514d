"""load_garment_image / read_garment: files decoded upright (EXIF orientation), implausible
garments (photos, busy backgrounds, opaque rectangles) refused with the rule they broke, and
unusable files or arrays refused as ``image`` in user terms."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from engine.errors import InputError
from engine.inputs.garment_image import GARMENT_MAX_SIDE, load_garment_image, read_garment
from engine.sample_media import read_sample_garment, sample_garment_path

ASTRONAUT = sample_garment_path().parent / "astronaut.png"
EXPECTED = "a garment on a transparent or plain background"


# ---------------------------------------------------------------- helpers


def _tiff_orientation(orientation: int) -> bytes:
    """A big-endian TIFF header with one IFD entry: Orientation (0x0112, SHORT) = orientation."""
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\x00" * 4


def _jpeg_with_orientation(bgr: np.ndarray, orientation: int) -> tuple[bytes, bytes]:
    """(JPEG bytes without EXIF, the same with an APP1 Exif segment right after SOI)."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    plain = buf.tobytes()
    payload = b"Exif\x00\x00" + _tiff_orientation(orientation)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return plain, plain[:2] + app1 + plain[2:]


def _png_with_orientation(bgra: np.ndarray, orientation: int) -> bytes:
    """PNG bytes with an eXIf chunk (after IHDR) holding the orientation."""
    ok, buf = cv2.imencode(".png", bgra)
    assert ok
    png = buf.tobytes()
    data = _tiff_orientation(orientation)
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + data))
    return png[:33] + chunk + png[33:]  # 8-byte signature + 25-byte IHDR chunk


# stored = STORE[o](upright); a viewer shows UPRIGHT[o](stored)
STORE = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, 1), 8: lambda a: np.rot90(a, -1)}
UPRIGHT = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


def _composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:].astype(np.float32) / 255
    out = rgba[..., :3] * alpha + background.astype(np.float32) * (1 - alpha)
    return out.round().astype(np.uint8)


def _refusal(image) -> str:
    with pytest.raises(InputError) as info:
        load_garment_image(image)
    assert info.value.argument == "image"
    message = str(info.value)
    assert "tensor" not in message.lower() and "torch" not in message.lower()
    return message


# ---------------------------------------------------------------- 1. EXIF orientation


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_exif_orientation_is_applied(tmp_path, orientation):
    upright = _composite(read_sample_garment(), np.full(3, 255))  # (512, 384, 3) RGB, tall
    stored = np.ascontiguousarray(STORE[orientation](upright))
    plain, tagged = _jpeg_with_orientation(cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), orientation)
    path = tmp_path / "phone.jpg"
    path.write_bytes(tagged)
    got = read_garment(path)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)  # fmt: skip
    assert np.array_equal(got, UPRIGHT[orientation](decoded))  # exactly the decoded pixels, turned
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright.astype(int)).mean() < 3  # upright, not sideways
    garment = load_garment_image(path)
    assert tuple(garment.rgba.shape[1:]) == (GARMENT_MAX_SIDE, 288)  # tall, as the garment is


def test_png_exif_orientation_turns_the_alpha_with_the_colour(tmp_path):
    upright = read_sample_garment()  # RGBA
    stored = np.ascontiguousarray(STORE[6](upright))
    path = tmp_path / "rotated.png"
    path.write_bytes(_png_with_orientation(cv2.cvtColor(stored, cv2.COLOR_RGBA2BGRA), 6))
    got = read_garment(path)
    assert got.shape == upright.shape and np.array_equal(got, upright)


def test_files_without_orientation_are_unchanged(tmp_path):
    rgba = read_sample_garment()
    assert np.array_equal(read_garment(sample_garment_path()), rgba)
    plain, _ = _jpeg_with_orientation(cv2.cvtColor(rgba[..., :3], cv2.COLOR_RGB2BGR), 1)
    (tmp_path / "plain.jpg").write_bytes(plain)
    assert read_garment(tmp_path / "plain.jpg").shape == (512, 384, 3)


# ---------------------------------------------------------------- 2. plausible garments


def _cases():
    rgba = read_sample_garment()
    h, w = rgba.shape[:2]
    rng = np.random.default_rng(0)
    stripes = np.zeros((h, w, 3), np.uint8)
    stripes[(np.arange(h) // 12) % 2 == 0] = (230, 40, 40)
    stripes[(np.arange(h) // 12) % 2 == 1] = (20, 20, 200)
    rect = np.zeros((h, w, 4), np.uint8)
    rect[100:400, 80:300] = (200, 30, 30, 255)
    frame = np.zeros((h, w, 4), np.uint8)  # a thick frame: along the whole border
    frame[..., :3] = 128
    frame[..., 3] = 255
    frame[60:-60, 60:-60, 3] = 0
    two = np.zeros((h, 2 * w, 4), np.uint8)  # two garments side by side
    two[:, :w], two[:, w:] = rgba, rgba
    astronaut = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    accepted = {
        "sample-path": sample_garment_path(),
        "sample-array": rgba,
        "on-white": _composite(rgba, np.full(3, 255)),
        "on-flat-colour": _composite(rgba, np.array([90, 140, 200])),
        "opaque-rgba-on-black": np.dstack([rgba[..., :3], np.full((h, w), 255, np.uint8)]),
    }
    refused = {
        "on-noise": (_composite(rgba, rng.integers(0, 256, (h, w, 3))), "% of it garment"),
        "on-stripes": (_composite(rgba, stripes), "busy background"),
        "photo-path": (ASTRONAUT, "% of it garment"),
        "photo-opaque-rgba": (
            np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)]),
            "% of it garment",
        ),
        "alpha-0.99-everywhere": (
            np.dstack([rgba[..., :3], np.full((h, w), 252, np.uint8)]),
            "100% of it garment",
        ),
        "opaque-rectangle": (rect, "no wider at the shoulders"),
        "frame-along-the-border": (frame, "of its edges"),
        "two-garments": (two, "2 pieces"),
        "thin-line": (
            np.pad(np.full((4, 1800, 4), 255, np.uint8), ((2, 2), (100, 100), (0, 0))),
            "no wider at the shoulders",
        ),
    }
    return accepted, refused


ACCEPTED, REFUSED = _cases()


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_plausible_garments_are_accepted(name):
    garment = load_garment_image(ACCEPTED[name])
    alpha = garment.rgba[3]
    assert 0.15 < float((alpha > 0.5).float().mean()) < 0.5
    assert garment.points.shape == (10, 2)


@pytest.mark.parametrize("name", list(REFUSED))
def test_implausible_garments_are_refused_with_the_reason(name):
    image, reason = REFUSED[name]
    message = _refusal(image)
    assert EXPECTED in message and reason in message


# ---------------------------------------------------------------- 3. unusable images


def test_tiny_image_file_is_refused_in_user_terms(tmp_path):
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.zeros((1, 1, 3), np.uint8))
    message = _refusal(path)
    assert "at least 8x8 pixels" in message and "1x1 image" in message and "dot.png" in message
    cv2.imwrite(str(path), np.zeros((5, 40, 4), np.uint8))
    assert "40x5 image" in _refusal(path)


@pytest.mark.parametrize(
    "array", [np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1, 4), np.uint8),
              np.zeros((7, 64, 3), np.uint8)], ids=["1x1", "1x1-rgba", "7x64"],
)  # fmt: skip
def test_tiny_array_is_refused_in_user_terms(array):
    message = _refusal(array)
    assert "at least 8x8 pixels" in message and str(array.shape) in message


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    message = _refusal(path)
    assert "an empty file (empty.png)" in message and "image file" in message


def test_text_file_named_png_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 20)
    message = _refusal(path)
    assert "not an image (notes.png)" in message


@pytest.mark.parametrize(
    "image", [None, 3, "no/such/garment.png", np.zeros((64, 64, 3), np.float32),
              np.zeros((64, 64), np.uint8), np.full((64, 64, 3), 200, np.uint8)],
    ids=["none", "int", "missing", "float32", "2d", "no-garment"],
)  # fmt: skip
def test_other_unusable_inputs_name_image(image):
    _refusal(image)


def test_directory_is_not_an_image_file(tmp_path):
    assert "existing image file" in _refusal(tmp_path)
