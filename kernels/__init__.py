"""Triton kernels for the try-on engine, each beside its plain-PyTorch reference (``*_ref``).

Public ops (torch tensors in and out; ``impl="auto" | "triton" | "torch" | "opencv"``)::

    gaussian_blur, box_blur                 filters equal to OpenCV's (reflect-101)
    composite                               the MPDT generator's two-stage mask compositing
    rgb_to_ycbcr, skin_mask, rgb_to_hsi,    colour conversions and the Cb-Cr skin ellipse
    gradient_map                            two zero-sum gradient (Laplacian) filters
    patch_attention                         multi-scale patch attention (MPDT blocks)
    paste                                   the try-on pasted into the uint8 frame in place,
                                            garment sampled at full resolution (sharp)
    patch_attention_plugin, composite_plugin  the TensorRT plugins' single-launch kernels

Importing the package registers each op as ``torch.ops.tryon.<name>``. Triton fixes compiled vs
interpreted execution when a kernel module is imported (see :mod:`kernels.triton_mode`): set
``TRITON_INTERPRET=1`` before the first ``import kernels`` to run the kernels on CPU tensors.
"""

from kernels.box_blur import box_blur, box_blur_ref
from kernels.composite import composite, composite_ref
from kernels.composite_plugin import composite_plugin, composite_plugin_ref
from kernels.gaussian_blur import gaussian_blur, gaussian_blur_ref
from kernels.gradient_map import gradient_map, gradient_map_ref
from kernels.paste import paste, paste_ref
from kernels.patch_attention import patch_attention, patch_attention_ref
from kernels.patch_attention_plugin import patch_attention_plugin, patch_attention_plugin_ref
from kernels.rgb_to_hsi import rgb_to_hsi, rgb_to_hsi_ref
from kernels.rgb_to_ycbcr import rgb_to_ycbcr, rgb_to_ycbcr_ref
from kernels.skin_mask import skin_mask, skin_mask_ref

__all__ = [
    "box_blur",
    "box_blur_ref",
    "composite",
    "composite_ref",
    "composite_plugin",
    "composite_plugin_ref",
    "gaussian_blur",
    "gaussian_blur_ref",
    "gradient_map",
    "gradient_map_ref",
    "paste",
    "paste_ref",
    "patch_attention",
    "patch_attention_ref",
    "patch_attention_plugin",
    "patch_attention_plugin_ref",
    "rgb_to_hsi",
    "rgb_to_hsi_ref",
    "rgb_to_ycbcr",
    "rgb_to_ycbcr_ref",
    "skin_mask",
    "skin_mask_ref",
]
