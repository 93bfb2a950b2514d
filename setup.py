"""Packaging of tryon-engine. Tool configuration (pytest, ruff) lives in pyproject.toml.

Every runtime dependency carries the reason for its bound; change a pin only with that reason.
"""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGES = ("engine", "kernels", "export")

install_requires = [
    # Exact: on CPU machines `torch==2.13.0` resolves to the local CPU build, while a range
    # would pull the newest release with several GB of CUDA wheels; on GPU machines it is the
    # PyPI CUDA build of the same version.
    "torch==2.13.0",
    # The Triton that torch 2.13.0's CUDA build requires, so the kernels are tested on CPU
    # (TRITON_INTERPRET=1) with exactly the Triton that compiles them on GPUs. Linux only.
    "triton==3.7.1; platform_system == 'Linux'",
    # mediapipe 0.10.21 is built against the numpy 1.x ABI.
    "numpy>=1.26,<2",
    # mediapipe 0.10.21 needs protobuf < 5; onnx 1.17 is the line that works with protobuf 4.
    "protobuf>=4.25,<5",
    "onnx==1.17.*",
    # onnx-simplifier: folds the exported graph before plugins are inserted (wheel, no build).
    "onnxsim>=0.4.36",
    # The CPU backend: runs the standard ONNX graph.
    "onnxruntime>=1.20",
    # 0.10.21 is the last release that ships the pose and segmentation models inside the wheel
    # (newer ones download them at run time, which these machines cannot).
    "mediapipe==0.10.21",
    # mediapipe pulls jax; jax/jaxlib 0.7.2 and later need numpy >= 2, and without this bound
    # pip backtracks through dozens of 80 MB jaxlib wheels before settling on 0.7.1.
    "jax<=0.7.1",
    "jaxlib<=0.7.1",
    # mediapipe 0.10.21 depends on opencv-contrib-python, a superset of cv2 (with a GUI backend
    # for `--show`); adding opencv-python-headless too would install two wheels into the same
    # cv2/ folder. < 4.12 because 4.12 and later need numpy >= 2 (and pip backtracks for minutes).
    "opencv-contrib-python>=4.10,<4.12",
    # Generator weights: a safe tensor format (no pickle), config stored in its metadata.
    "safetensors>=0.4",
    # Progress bars for export, training and video files.
    "tqdm>=4.66",
]

extras_require = {
    # NVIDIA only; cannot be installed on machines without access to NVIDIA's download host.
    # TensorRT 10.x or 11.x (strongly typed networks), cuda-python for stream/event calls that
    # torch does not cover.
    "tensorrt": ["tensorrt>=10.8,<12", "cuda-python>=12.6"],
    # `tryon serve` (browser try-on over WebRTC): aiohttp serves the page and the signalling;
    # aiortc 1.16 (verified with the numpy < 2 / protobuf < 5 / opencv < 4.12 pins) brings PyAV.
    "serve": ["aiohttp>=3.9,<4", "aiortc>=1.16,<2"],
    # Many live streams on a Ray cluster (engine.cluster). Ray core only: ray[default] needs
    # protobuf >= 5, which mediapipe 0.10.21 forbids; 2.60 verified with the pins.
    "cluster": ["ray>=2.9,<3"],
    # `tryon run --virtual-camera`: needs v4l2loopback (Linux) or OBS Studio (Windows/macOS).
    "virtualcam": ["pyvirtualcam>=0.11"],
    # Tests, benchmarks and lint. ruff is exact so lint results do not drift between machines.
    "dev": [
        "pytest>=8",
        "pytest-benchmark>=4",
        "hypothesis>=6.100",
        "ruff==0.17.5",
        # engine.serve's tests run the server (the `serve` extra's packages).
        "aiohttp>=3.9,<4",
        "aiortc>=1.16,<2",
        # Drives Debian's /usr/bin/chromium in the browser test (never `playwright install`).
        "playwright>=1.45",
        # engine.cluster's tests start a local Ray cluster (the `cluster` extra).
        "ray>=2.9,<3",
    ],
}

setup(
    name="tryon-engine",
    version="0.1.0",
    description="Optimized inference engine for video virtual try-on generators "
    "(ONNX, TensorRT fp16, Triton kernels, streaming runtime)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=[f"{top}{sub}" for top in PACKAGES for sub in ("", ".*")]),
    include_package_data=True,
    package_data={"engine": ["models/*.safetensors", "assets/*", "serve/static/*"]},
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={"console_scripts": ["tryon = engine.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
