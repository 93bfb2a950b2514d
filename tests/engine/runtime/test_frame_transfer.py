"""engine.runtime.frame_transfer: the frame's trip to the paste's device and back."""

import numpy as np
import pytest
import torch

from engine.runtime.frame_transfer import FrameTransfer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _frame(seed: int = 0, shape=(7, 9, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("view", ["contiguous", "flipped", "cut"])
def test_cpu_upload_is_a_new_tensor_and_download_gives_it_back(view):
    frame = _frame()
    if view == "flipped":
        frame = frame[:, ::-1]  # negative strides, as a mirrored webcam gives
    elif view == "cut":
        frame = np.ascontiguousarray(_frame(shape=(9, 12, 3)))[1:8, 2:11]
    before = frame.copy()
    transfer = FrameTransfer("cpu")
    up = transfer.upload(frame)
    assert up.dtype == torch.uint8 and tuple(up.shape) == frame.shape and up.device.type == "cpu"
    assert np.array_equal(up.numpy(), before)
    up[0, 0] = 255 - up[0, 0]  # the paste writes the uploaded copy, never the frame as filmed
    assert np.array_equal(frame, before)
    down = transfer.download(up)
    assert isinstance(down, np.ndarray) and down.dtype == np.uint8
    assert np.array_equal(down[0, 0], 255 - before[0, 0]) and np.array_equal(down[1:], before[1:])


def test_cpu_uploads_do_not_share_memory():
    transfer = FrameTransfer("cpu")
    a, b = transfer.upload(_frame(1)), transfer.upload(_frame(2))
    assert a.data_ptr() != b.data_ptr()
    assert not np.array_equal(a.numpy(), b.numpy())


@needs_cuda
def test_cuda_round_trip_through_pinned_buffers():
    transfer = FrameTransfer("cuda")
    for seed, shape in ((0, (7, 9, 3)), (1, (7, 9, 3)), (2, (5, 4, 3))):  # a size change too
        frame = _frame(seed, shape)
        up = transfer.upload(frame)
        assert up.is_cuda and torch.equal(up.cpu(), torch.from_numpy(frame))
        up.add_(1)
        down = transfer.download(up)
        assert np.array_equal(down, frame + np.uint8(1))
        assert not np.shares_memory(down, transfer._down.numpy())  # the caller owns it
