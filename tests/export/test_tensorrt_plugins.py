"""The TensorRT plugins' plain parts, on CPU: launch maths, AOT argument order, PTX.

TensorRT itself cannot be installed here; ``register_plugins`` is exercised where it is. The PTX
is compiled in a subprocess without TRITON_INTERPRET (conftest sets it for this process, and the
interpreter replaces kernels with Python functions that cannot be compiled).
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from engine.errors import BackendUnavailableError, InputError
from export.tensorrt_plugins import (
    composite_launch,
    patch_attention_launch,
    plugin_source_hash,
    register_plugins,
)

LITE_HEAD = dict(patch_h=8, patch_w=6, channel_offset=16, head_channels=8)  # lite: 32x24 map


def _order(signature):
    """The runtime arguments as a string of kinds: i(nput pointer), s(calar), o(utput)."""
    kinds = []
    for name, kind in signature.items():
        if kind == "constexpr":
            continue
        kinds.append("s" if kind == "i32" else ("o" if name in ("o_ptr", "out_ptr") else "i"))
    return "".join(kinds)


def test_patch_attention_launch_follows_the_shapes():
    launch = patch_attention_launch((1, 4, 32, 32, 24), dtype="fp16", **LITE_HEAD)
    n_tokens = 4 * (32 // 8) * (24 // 6)  # 64
    assert launch.grid == (n_tokens // launch.constexprs["BLOCK_M"], 1, 1)
    assert launch.constexprs["BLOCK_N"] >= n_tokens
    assert launch.constexprs["SCALE"] == pytest.approx((8 * 8 * 6) ** -0.5)
    order = _order(launch.signature)
    assert order == "iiii" + "s" * len(launch.scalars) + "o"  # inputs, int32 scalars, outputs
    assert launch.scalars[:5] == (4 * 32 * 32 * 24, 32 * 32 * 24, 32 * 24, 24, 1)  # q strides
    assert launch.scalars[-4:] == (4, 32, 24, 16)  # T, H, W, channel offset
    batch = patch_attention_launch((3, 2, 8, 9, 10), patch_h=3, patch_w=5, channel_offset=0,
                                   head_channels=4, dtype="fp32")  # fmt: skip
    assert batch.grid == (1, 3, 1) and batch.constexprs["IEEE"]  # 12 tokens: one block per seq


def test_composite_launch_follows_the_shapes():
    launch = composite_launch((4, 3, 128, 96), dtype="fp32")
    block = launch.constexprs["BLOCK"]
    assert launch.grid == (-(-128 * 96 // block), 4, 1)
    assert _order(launch.signature) == "iiiii" + "s" * len(launch.scalars) + "o"
    assert launch.scalars[-2:] == (128, 96)
    assert composite_launch((1, 3, 1, 1), dtype="fp16").grid == (1, 1, 1)


def test_launch_maths_rejects_bad_shapes():
    with pytest.raises(InputError):
        patch_attention_launch((1, 4, 32, 32, 24), dtype="fp16", **(LITE_HEAD | {"patch_h": 5}))
    with pytest.raises(InputError):
        patch_attention_launch((1, 4, 32, 32, 24), dtype="fp16",
                               **(LITE_HEAD | {"channel_offset": 30}))  # fmt: skip
    with pytest.raises(InputError):
        patch_attention_launch((1, 4, 32, 32), dtype="fp16", **LITE_HEAD)
    with pytest.raises(InputError):
        composite_launch((1, 3, 8, 8), dtype="bf16")


def test_source_hash_is_stable():
    assert plugin_source_hash() == plugin_source_hash() and len(plugin_source_hash()) == 64


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_registration_without_tensorrt_says_how_to_get_it():
    with pytest.raises(BackendUnavailableError, match="pip install"):
        register_plugins()


_COMPILE = """
import json, re
from export.tensorrt_plugins import composite_launch, patch_attention_launch, plugin_ptx
launches = {
    "attention_fp32": patch_attention_launch((1, 4, 32, 32, 24), patch_h=8, patch_w=6,
                                             channel_offset=16, head_channels=8, dtype="fp32"),
    "composite_fp16": composite_launch((4, 3, 128, 96), dtype="fp16"),
}
out = {}
for key, launch in launches.items():
    k = plugin_ptx(launch, cc=90)
    entry = re.search(r"\\.entry\\s+(\\w+)\\s*\\((.*?)\\)", k.ptx, re.S)
    runtime_args = sum(t != "constexpr" for t in launch.signature.values())
    out[key] = {"name": k.name, "entry": entry.group(1), "params": k.params,
                "ptx_params": entry.group(2).count(".param"), "runtime_args": runtime_args,
                "shared": k.shared_mem, "warps": k.num_warps, "launch_warps": launch.num_warps,
                "reqntid": re.search(r"\\.reqntid\\s+(\\d+)", k.ptx).group(1),
                "has_entry_line": f".entry {k.name}" in k.ptx}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def compiled():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, text=True,
                          timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key", ["attention_fp32", "composite_fp16"])
def test_ptx_entry_takes_exactly_tensorrts_arguments(compiled, key):
    k = compiled[key]
    assert k["has_entry_line"] and k["entry"] == k["name"]
    assert k["ptx_params"] == k["params"] == k["runtime_args"]  # Triton's scratch args removed
    assert k["warps"] == k["launch_warps"] and int(k["reqntid"]) == 32 * k["warps"]
    assert 0 <= k["shared"] <= 227 * 1024  # fits an H100/H200 SM
