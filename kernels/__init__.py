"""Triton kernels for the try-on engine, each beside its plain-PyTorch reference.

Kernel modules are imported on demand: Triton fixes compiled vs interpreted execution when a
kernel module is imported (see :mod:`kernels.triton_mode`).
"""
