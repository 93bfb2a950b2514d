"""Test-wide setup.

Triton picks compiled vs interpreted execution when ``@triton.jit`` runs, i.e. when a kernel
module is imported, so ``TRITON_INTERPRET=1`` must be in the environment before any test module
imports ``kernels``. Without a CUDA device it is set here (kernels then run on CPU tensors in
Triton's interpreter); with one, the kernels compile for real. An explicit ``TRITON_INTERPRET``
in the environment always wins.
"""

import os

import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
