"""The streaming runners on the tiny generator: causal steps equal the full generator on the last T
frames, the stream start repeats the first frame, reset restarts, blocks equal the forward, the
onnxruntime backend matches torch, the exported-graph cache is reused and keyed, and bad inputs
are named. The TensorRT streaming engines come from the plugins graphs where the Triton plugins
register (the choice is tested here with the builder stood in; the real build where TensorRT
is), and their cache keys differ with and without plugins."""

import importlib.util

import pytest
import torch

from engine.backends.graph_cache import build_into_cache, default_cache_dir
from engine.backends.graph_cache import graph_cache_dir as factory_cache_dir
from engine.backends.selection import BackendChoice, choose_backend
from engine.backends.streaming_runner import make_streaming_runner
from engine.errors import BackendUnavailableError, InputError
from engine.model.mpdt_generator import INPUT_NAMES, OUTPUT_NAMES
from engine.model.weights import load_generator
from tests.runtime_fixtures import make_lively, tiny_model_file


def graph_cache_dir(model, frames, root=None):
    """The window's cache folder (fp32 graphs) under ``root``."""
    root = default_cache_dir() if root is None else root
    return factory_cache_dir(model, frames=frames, precision="fp32", cache_dir=root)


T = 2  # the tiny model's window
TORCH = BackendChoice("torch", "cpu", "test")
# Batch 1 vs batch T convolutions round differently on CPU (~1e-7): the step's encoder sees one
# frame, the forward's sees T; the lively model's scaled weights amplify that to ~6e-6. (The
# written-out computation below is compared bit for bit.)
FORWARD_ATOL = 2e-5


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The tiny generator made lively (:func:`tests.runtime_fixtures.make_lively`): the other
    frames of a window change its output by ~1e-2, so a window bug shows."""
    model = make_lively(load_generator(tiny_model_file(tmp_path_factory.mktemp("tiny"))))
    return model


def test_the_window_context_matters(model, frames):
    """The premise of the tests below: another frame in the window changes the output."""
    other = _forward_last(model, [frames[1], frames[0]])
    assert _max_diff(_forward_last(model, [frames[2], frames[0]]), other) > 1e-3


@pytest.fixture(scope="module")
def frames(model):
    """Seven (1, C, H, W) frames of generator inputs."""
    cfg = model.config
    g = torch.Generator().manual_seed(3)
    channels = {"cloth": 4, "pose": cfg.pose_channels, "background": 3, "background_mask": 1}
    out = []
    for _ in range(7):
        x = {n: torch.rand((1, channels[n], cfg.height, cfg.width), generator=g) for n in channels}
        x["cloth"][:, 3] = (x["cloth"][:, 3] > 0.3).float()
        x["background_mask"] = (x["background_mask"] > 0.5).float()
        out.append(x)
    return out


@pytest.fixture(scope="module")
def ort_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("graphs")


@pytest.fixture(scope="module")
def ort_window(model, ort_cache):
    pytest.importorskip("onnxruntime")
    return make_streaming_runner(
        model, frames=T, choice=choose_backend("onnxruntime"), cache_dir=ort_cache
    )


def _stack(window_frames):
    """[(1, C, H, W) dicts] -> (T, C, H, W) dict."""
    return {n: torch.cat([f[n] for f in window_frames]) for n in INPUT_NAMES}


def _forward_last(model, window_frames):
    """The full generator on these frames, in order; the last frame's outputs (1, C, H, W)."""
    with torch.no_grad():
        out = model(**{n: x[None] for n, x in _stack(window_frames).items()})
    return {n: out[n][0, -1:] for n in OUTPUT_NAMES}


def _max_diff(a, b):
    return max(float((a[n] - b[n]).abs().max()) for n in OUTPUT_NAMES)


def _copy(out):
    return {n: x.clone() for n, x in out.items()}


def test_each_step_equals_the_forward_on_the_last_t_frames(model, frames):
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    assert window.backend == "torch"
    for k, frame in enumerate(frames[:5]):
        out = window.step(frame)
        assert set(out) == set(OUTPUT_NAMES)
        assert out["tryon"].shape == (1, 3, 32, 24) and out["cloth_mask"].shape == (1, 1, 32, 24)
        history = [frames[0]] * max(0, T - 1 - k) + frames[max(0, k - T + 1) : k + 1]
        assert len(history) == T
        assert _max_diff(out, _forward_last(model, history)) <= FORWARD_ATOL
        if k == 3:  # not just any context: an older frame in place of the previous one differs
            assert _max_diff(out, _forward_last(model, [frames[1], frame])) > 1e-3


def test_step_is_exactly_encode_attend_decode_per_frame(model, frames):
    """Bit-exact against the same computation written out: each frame encoded alone, the MPDT
    blocks over the ring (slot order), the newest slot decoded."""
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    with torch.no_grad():
        feats = [model.encode(**f) for f in frames]
        for k, frame in enumerate(frames[:5]):
            out = window.step(frame)
            ring = [feats[0]] * T  # the stream start fills every slot with the first frame
            for j in range(k + 1):
                ring[j % T] = feats[j]
            cat = {n: torch.cat([r[n] for r in ring]) for n in feats[0]}
            fused = model.attend(cat["cloth_features"], cat["pose_features"],
                                 cat["background_features"], cat["omega"], T)  # fmt: skip
            slot = k % T
            ref = model.decode(fused[slot : slot + 1], feats[k]["background_half"],
                               feats[k]["background_full"], frame["cloth"],
                               frame["background"], frame["background_mask"])  # fmt: skip
            assert _max_diff(out, ref) == 0.0


def test_first_frame_is_repeated_at_the_stream_start(model, frames):
    for length in (T, 3):
        window = make_streaming_runner(model, frames=length, choice=TORCH)
        out = window.step(frames[0])
        assert _max_diff(out, _forward_last(model, [frames[0]] * length)) <= FORWARD_ATOL
    # T = 1: every step is the generator on that frame alone
    single = make_streaming_runner(model, frames=1, choice=TORCH)
    for frame in frames[:3]:
        assert _max_diff(single.step(frame), _forward_last(model, [frame])) <= FORWARD_ATOL


def test_step_returns_reused_buffers(model, frames):
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    first = window.step(frames[0])
    kept = _copy(first)
    second = window.step(frames[1])
    assert second["tryon"] is first["tryon"]
    assert _max_diff(kept, second) > 1e-3


def test_reset_restarts_the_stream(model, frames):
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    for frame in frames[:3]:
        window.step(frame)
    window.reset()
    restarted = [_copy(window.step(f)) for f in frames[4:7]]
    fresh = make_streaming_runner(model, frames=T, choice=TORCH)
    expected = [_copy(fresh.step(f)) for f in frames[4:7]]
    for got, want in zip(restarted, expected, strict=True):
        assert _max_diff(got, want) == 0.0


def test_block_equals_the_forward(model, frames):
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    block = _stack(frames[2 : 2 + T])
    out = window.block(block)
    with torch.no_grad():
        ref = model(**{n: x[None] for n, x in block.items()})
    for name in OUTPUT_NAMES:
        assert out[name].shape == ref[name].shape[1:]
        assert torch.equal(out[name], ref[name][0])


def test_onnxruntime_steps_match_torch(model, frames, ort_window):
    assert ort_window.backend == "onnxruntime"
    reference = make_streaming_runner(model, frames=T, choice=TORCH)
    sequence = frames[:5] + ["reset"] + frames[5:7]
    for frame in sequence:
        if frame == "reset":
            ort_window.reset()
            reference.reset()
            continue
        want = _copy(reference.step(frame))
        got = ort_window.step(frame)
        assert set(got) == set(OUTPUT_NAMES)
        assert _max_diff(got, want) < 1e-4
    ort_window.reset()


def test_onnxruntime_block_matches_torch(model, frames, ort_window, ort_cache):
    block = _stack(frames[:T])
    want = make_streaming_runner(model, frames=T, choice=TORCH).block(block)
    got = ort_window.block(block)
    assert _max_diff(got, want) < 1e-4
    assert (graph_cache_dir(model, T, ort_cache) / "standard.onnx").is_file()


def test_graph_cache_is_reused(model, frames, ort_window, ort_cache, monkeypatch):
    directory = graph_cache_dir(model, T, ort_cache)
    files = {name: directory / name for name in ("encoder.onnx", "window.onnx")}
    assert all(p.is_file() for p in files.values())
    mtimes = {name: p.stat().st_mtime_ns for name, p in files.items()}
    import export.streaming_graphs

    def no_export(*args, **kwargs):
        raise AssertionError("the cached graphs were exported again")

    monkeypatch.setattr(export.streaming_graphs, "export_streaming_graphs", no_export)
    again = make_streaming_runner(
        model, frames=T, choice=choose_backend("onnxruntime"), cache_dir=ort_cache
    )
    assert {name: p.stat().st_mtime_ns for name, p in files.items()} == mtimes
    assert _max_diff(again.step(frames[0]), _copy(ort_window.step(frames[0]))) == 0.0
    ort_window.reset()


def test_graph_cache_key(tmp_path, monkeypatch):
    weights = tiny_model_file(tmp_path)
    model = load_generator(weights)
    key = graph_cache_dir(model, T, tmp_path)
    assert key.parent == tmp_path / "graphs"
    assert graph_cache_dir(model, T, tmp_path) == key  # deterministic
    assert graph_cache_dir(model, 3, tmp_path) != key
    changed = load_generator(weights)  # same weights, another object: same key
    assert graph_cache_dir(changed, T, tmp_path) == key
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert graph_cache_dir(changed, T, tmp_path) != key
    monkeypatch.setenv("TRYON_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert graph_cache_dir(model, T).parent == tmp_path / "env" / "graphs"


@pytest.mark.parametrize(
    "change, argument",
    [
        (lambda x: {k: v for k, v in x.items() if k != "pose"}, "inputs"),
        (lambda x: {**x, "extra": x["pose"]}, "inputs"),
        (lambda x: list(x.values()), "inputs"),
        (lambda x: {**x, "pose": torch.cat([x["pose"], x["pose"]])}, "pose"),
        (lambda x: {**x, "cloth": x["cloth"][:, :3]}, "cloth"),
        (lambda x: {**x, "background": x["background"][0]}, "background"),
        (lambda x: {**x, "background_mask": x["background_mask"].double()}, "background_mask"),
        (lambda x: {**x, "cloth": x["cloth"].half()}, "cloth"),
        (lambda x: {**x, "pose": x["pose"].numpy()}, "pose"),
    ],
    ids=["missing-key", "extra-key", "list", "two-frames", "channels", "3d", "float64",
         "float16", "numpy"],
)  # fmt: skip
def test_bad_step_inputs_are_named(model, frames, change, argument):
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    with pytest.raises(InputError) as info:
        window.step(change(frames[0]))
    assert info.value.argument == argument
    assert window.seen == 0  # rejected before any work


def test_bad_block_inputs_are_named(model, frames):
    window = make_streaming_runner(model, frames=T, choice=TORCH)
    with pytest.raises(InputError) as info:
        window.block(frames[0])  # one frame, not T
    assert info.value.argument == "cloth"
    block = _stack(frames[:T])
    block["pose"] = block["pose"].double()
    with pytest.raises(InputError) as info:
        window.block(block)
    assert info.value.argument == "pose"


@pytest.mark.parametrize("value", [0, -1, True, 2.0, "2"])
def test_bad_frames_argument(model, value):
    with pytest.raises(InputError) as info:
        make_streaming_runner(model, frames=value, choice=TORCH)
    assert info.value.argument == "frames"


def test_frames_none_is_the_models_window(model):
    assert make_streaming_runner(model, frames=None, choice=TORCH).frames == model.config.frames


def test_tensorrt_without_tensorrt_says_what_is_missing(model):
    """Never a silent substitute: the TensorRT runner raises, naming the backend."""
    with pytest.raises(BackendUnavailableError) as info:
        make_streaming_runner(model, frames=T, choice=BackendChoice("tensorrt", "cuda", "test"))
    assert info.value.backend == "tensorrt" and "install" in info.value.reason
    # the model is untouched (still on the CPU, still usable)
    assert next(model.parameters()).device.type == "cpu"


def test_fp16_on_the_cpu_is_refused_before_any_work(model):
    with pytest.raises(InputError) as info:
        make_streaming_runner(model, frames=T, choice=TORCH, precision="fp16")
    assert info.value.argument == "precision" and "CUDA" in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_fp16_steps_on_cuda_track_fp32(model, frames):
    choice = BackendChoice("torch", "cuda", "test")
    fp32 = make_streaming_runner(model, frames=T, choice=choice)
    fp16 = make_streaming_runner(model, frames=T, choice=choice, precision="fp16")
    for f in frames[:4]:
        want = {k: v.clone() for k, v in fp32.step(f).items()}
        got = fp16.step(f)
        assert _max_diff(got, want) < 5e-2


# --- TensorRT streaming engines: plugins graphs where the Triton plugins register -------------

MACHINE = dict(tensorrt_version="10.13.0", gpu_name="NVIDIA H200", compute_capability=(9, 0))


@pytest.fixture
def fake_builder(monkeypatch):
    """Stands in for TensorRT (absent here) in build_into_cache: records which graph each engine
    would be built from, and whether that graph has plugin nodes; the export is real."""
    import export.tensorrt_engine as trt_engine

    built = []

    def load_or_build_engine(path, cache_dir, *, precision, log=print, plugin_source_hash=None):
        data = path.read_bytes()
        built.append((path.name, precision, trt_engine.uses_plugins(data)))
        return b"engine of " + path.name.encode()

    def registrable(value):
        monkeypatch.setattr(trt_engine, "try_register_plugins", lambda log=print: value)

    monkeypatch.setattr(trt_engine, "load_or_build_engine", load_or_build_engine)
    return built, registrable


@pytest.fixture(scope="module")
def trt_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("trt-cache")


def test_streaming_engines_come_from_the_plugins_graphs_when_they_register(
    model, trt_cache, fake_builder
):
    built, registrable = fake_builder
    for plugins in (True, False):  # one export writes both (the standard one then is cached)
        registrable(plugins)
        logs = []
        engines = build_into_cache(model, "streaming-tensorrt", frames=T, precision="fp32",
                                   cache_dir=trt_cache, log=logs.append)  # fmt: skip
        window = "window.plugins.onnx" if plugins else "window.onnx"
        assert engines.plugins is plugins and engines.sources == ("encoder.onnx", window)
        assert (engines.encoder, engines.window) == (b"engine of encoder.onnx",
                                                     b"engine of " + window.encode())  # fmt: skip
        assert built[-2:] == [("encoder.onnx", "fp32", False), (window, "fp32", plugins)]
        assert any(window in line for line in logs)
    directory = graph_cache_dir(model, T, trt_cache)
    assert {p.name for p in directory.glob("*.onnx")} == {"encoder.onnx", "window.onnx",
                                                           "window.plugins.onnx"}  # fmt: skip
    registrable(False)  # asked for explicitly, refused where they do not register
    with pytest.raises(BackendUnavailableError, match="plugins cannot be registered"):
        build_into_cache(model, "streaming-tensorrt", frames=T, precision="fp32",
                         cache_dir=trt_cache, plugins=True)  # fmt: skip
    engines = build_into_cache(model, "streaming-tensorrt", frames=T, precision="fp32",
                               cache_dir=trt_cache, plugins=False)  # fmt: skip
    assert engines.sources == ("encoder.onnx", "window.onnx") and not engines.plugins
    for artifact, value in (("streaming", True), ("streaming-tensorrt", "yes")):
        with pytest.raises(InputError) as info:
            build_into_cache(model, artifact, frames=T, precision="fp32", cache_dir=trt_cache,
                             plugins=value)  # fmt: skip
        assert info.value.argument == "plugins"


def test_engine_cache_key_says_which_graph_and_precision(model, trt_cache, fake_builder):
    from export.tensorrt_engine import engine_key
    from export.tensorrt_plugins import plugin_source_hash

    _, registrable = fake_builder
    registrable(True)
    build_into_cache(model, "streaming-tensorrt", frames=T, precision="fp32", cache_dir=trt_cache)
    directory = graph_cache_dir(model, T, trt_cache)
    data = {n: (directory / n).read_bytes() for n in ("window.onnx", "window.plugins.onnx")}
    keys = {n: engine_key(b, precision="fp32", **MACHINE) for n, b in data.items()}
    assert keys["window.onnx"] != keys["window.plugins.onnx"]
    # only the plugins graph's key carries the plugin kernels' source hash
    assert keys["window.plugins.onnx"] == engine_key(
        data["window.plugins.onnx"], precision="fp32", plugin_source_hash=plugin_source_hash(),
        **MACHINE,
    )  # fmt: skip
    assert keys["window.plugins.onnx"] != engine_key(
        data["window.plugins.onnx"], precision="fp32", plugin_source_hash="", **MACHINE
    )
    assert keys["window.onnx"] == engine_key(data["window.onnx"], precision="fp32",
                                             plugin_source_hash="", **MACHINE)  # fmt: skip
    for name, value in data.items():
        assert engine_key(value, precision="fp16", **MACHINE) != keys[name]


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_without_tensorrt_the_plugins_do_not_register_and_say_why():
    from export.tensorrt_engine import try_register_plugins

    logs = []
    assert try_register_plugins(logs.append) is False
    assert len(logs) == 1 and "TensorRT not installed" in logs[0], logs


@pytest.mark.tensorrt
@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None,
    reason="TensorRT is not installed (it cannot be on these machines; NVIDIA hosts only)",
)
@pytest.mark.parametrize("plugins", [True, False], ids=["plugins", "standard"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_streaming_steps_match_torch(model, frames, tmp_path, monkeypatch, precision,
                                              plugins):  # fmt: skip
    """The real build: TensorRT engines from the plugins graphs (Triton AOT plugins) or the
    standard graphs, steps equal to the torch runner's, the engines cached."""
    import copy

    import export.tensorrt_engine as trt_engine
    from engine.backends.streaming_runner import TensorRTStreamingRunner

    if not torch.cuda.is_available():
        pytest.skip("TensorRT engines need a CUDA device")
    runner = TensorRTStreamingRunner(copy.deepcopy(model), T, precision, tmp_path,
                                     plugins=plugins)  # fmt: skip
    window = "window.plugins.onnx" if plugins else "window.onnx"
    assert runner.uses_plugins is plugins and runner.engine_sources == ("encoder.onnx", window)
    cuda = BackendChoice("torch", "cuda", "test")
    reference = make_streaming_runner(copy.deepcopy(model), frames=T, choice=cuda)
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    for frame in frames[:4]:  # the stream start, then the ring wrapping around
        want = _copy(reference.step(frame))
        got = runner.step(frame)
        assert _max_diff(got, want) < tolerance
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 2

    def no_build(*args, **kwargs):
        raise AssertionError("a cached engine was built again")

    monkeypatch.setattr(trt_engine, "build_engine", no_build)
    again = TensorRTStreamingRunner(copy.deepcopy(model), T, precision, tmp_path,
                                    plugins=plugins)  # fmt: skip
    runner.reset()  # both at the start of a stream
    assert _max_diff(again.step(frames[0]), _copy(runner.step(frames[0]))) == 0.0
