import threading

import torch

from engine.inputs.scratch import scratch


def test_a_name_hands_out_views_of_one_buffer_grown_when_needed():
    a = scratch("test_one", (4, 5))
    assert a.shape == (4, 5) and a.dtype == torch.float32 and a.is_contiguous()
    b = scratch("test_one", (2, 3))  # smaller: the same memory
    assert b.data_ptr() == a.data_ptr()
    c = scratch("test_one", (10, 10))  # larger: grown
    assert c.shape == (10, 10) and c.numel() == 100
    assert scratch("test_one", (3,)).data_ptr() == c.data_ptr()  # kept at the larger size


def test_names_dtypes_and_threads_have_buffers_of_their_own():
    a = scratch("test_two", (8,))
    assert scratch("test_three", (8,)).data_ptr() != a.data_ptr()
    d = scratch("test_two", (8,), dtype=torch.float64)
    assert d.dtype == torch.float64 and d.data_ptr() != a.data_ptr()
    other = []
    worker = threading.Thread(target=lambda: other.append(scratch("test_two", (8,)).data_ptr()))
    worker.start()
    worker.join()
    assert other[0] != a.data_ptr()


def test_empty_shapes():
    assert scratch("test_four", (0, 3)).shape == (0, 3)
    assert scratch("test_four", ()).shape == ()
