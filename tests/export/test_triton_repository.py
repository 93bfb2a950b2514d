"""The Triton model repository of the streaming graphs (demo model, CPU, onnxruntime).

Each ``config.pbtxt`` is read back with a small protobuf-text reader written here (the
tritonclient protos are not a dependency) and checked against the ONNX graph next to it, loaded
in onnxruntime: input / output names, dtypes and dims, the control inputs, and the implicit
state of the sequence batcher. The stateful window graph is then driven the way Triton drives it
(state outputs fed back as the next request's state inputs, START on a stream's first frame,
READY per batch slot) and must give what :class:`engine.cluster.batched.BatchedGenerator` gives
for the same streams.

TensorRT cannot be installed here: the ``tensorrt_plan`` variant is given a stand-in plan file,
and only its layout and config are checked.
"""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.cluster.batched import BatchedGenerator
from engine.errors import InputError
from engine.model.mpdt_generator import FEATURE_NAMES, INPUT_NAMES, OUTPUT_NAMES
from engine.model.weights import load_generator
from engine.runtime.stages import torch_threads
from export.streaming_graphs import RING_NAMES
from export.triton_repository import (
    CONTROL_INPUTS,
    ENCODER_MODEL,
    ENSEMBLE_MODEL,
    TRTEXEC_FILE,
    WINDOW_MODEL,
    state_names,
    to_pbtxt,
    write_triton_repository,
)

MAX_BATCH = 4
FRAMES = 4
ORT_TYPES = {"TYPE_FP32": "tensor(float)", "TYPE_INT32": "tensor(int32)",
             "TYPE_INT64": "tensor(int64)", "TYPE_UINT64": "tensor(uint64)"}  # fmt: skip
NP_TYPES = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


# ---------------------------------------------------------------------- a protobuf-text reader
_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}\[\]:,])|([^\s{}\[\]:,"]+))')


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"cannot read config at {text[pos : pos + 30]!r}")
            break
        pos = match.end()
        if match.group(1) is None:
            out.append(next(g for g in match.groups()[1:] if g is not None))
    return out


def _scalar(token: str):
    if token.startswith('"'):
        return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if re.fullmatch(r"-?\d*\.\d*(e-?\d+)?|-?\d+e-?\d+", token):
        return float(token)
    return {"true": True, "false": False}.get(token, token)  # an enum: its name


def parse_pbtxt(text: str) -> dict[str, list]:
    """Protobuf text format -> ``{field: [values]}`` (every field a list: repeated fields, list
    syntax and repeated blocks all append); messages are such dicts."""
    tokens = _tokens(text)
    pos = 0

    def value():
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "{":
            return message("}")
        return _scalar(token)

    def message(end: str | None) -> dict[str, list]:
        nonlocal pos
        fields: dict[str, list] = {}
        while pos < len(tokens) and tokens[pos] != end:
            name = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            if tokens[pos] == "[":
                pos += 1
                while tokens[pos] != "]":
                    fields.setdefault(name, []).append(value())
                    if tokens[pos] == ",":
                        pos += 1
                pos += 1
            else:
                fields.setdefault(name, []).append(value())
        pos += 1  # the closing brace
        return fields

    return message(None)


def one(message: dict, key: str):
    (value,) = message[key]
    return value


def tensors(message: dict, key: str) -> dict[str, tuple[str, list[int]]]:
    return {one(t, "name"): (one(t, "data_type"), t["dims"]) for t in message.get(key, [])}


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model():
    return load_generator("demo")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, model):
    out = tmp_path_factory.mktemp("triton")
    plan = out / "window.plan"
    plan.write_bytes(b"stand-in for a TensorRT plan: TensorRT cannot be installed here")
    report = write_triton_repository(out / "repo", model, frames=FRAMES, max_batch=MAX_BATCH,
                                     window_plan=plan)  # fmt: skip
    return report, plan


def _config(report, name: str) -> dict:
    return parse_pbtxt((report.directory / name / "config.pbtxt").read_text())


def _session(report, name: str) -> ort.InferenceSession:
    path = report.directory / name / "1" / "model.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # small graphs: threads cost more than they save here
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _graph(session) -> tuple[dict, dict]:
    def of(values):
        return {v.name: (v.type, list(v.shape)) for v in values}

    return of(session.get_inputs()), of(session.get_outputs())


# ---------------------------------------------------------------------- tests
def test_the_reader_reads_what_the_writer_writes():
    config = {"name": "m", "max_batch_size": 4, "dims": [1, -1], "flag": True, "rate": 0.5,
              "input": [{"name": "a", "dims": [3]}, {"name": "b", "dims": [4, 5]}],
              "nested": {"inner": {"text": 'say "hi"'}}}  # fmt: skip
    back = parse_pbtxt(to_pbtxt(config))
    assert one(back, "name") == "m" and one(back, "max_batch_size") == 4
    assert back["dims"] == [1, -1] and one(back, "flag") is True and one(back, "rate") == 0.5
    assert [(one(t, "name"), t["dims"]) for t in back["input"]] == [("a", [3]), ("b", [4, 5])]
    assert one(one(one(back, "nested"), "inner"), "text") == 'say "hi"'


def test_the_repository_layout(repo):
    report, plan = repo
    root = report.directory
    for name in (ENCODER_MODEL, WINDOW_MODEL):
        assert (root / name / "config.pbtxt").is_file()
        assert (root / name / "1" / "model.onnx").is_file()
        assert one(_config(report, name), "platform") == "onnxruntime_onnx"
        assert one(_config(report, name), "max_batch_size") == MAX_BATCH
        command = (root / name / TRTEXEC_FILE).read_text()
        assert command.startswith("trtexec --onnx=1/model.onnx") and "--maxShapes=" in command
    assert f"--maxShapes=cloth:{MAX_BATCH}x4x128x96," in (root / ENCODER_MODEL / TRTEXEC_FILE
                                                            ).read_text()  # fmt: skip
    assert (root / ENSEMBLE_MODEL / "config.pbtxt").is_file()
    assert (root / ENSEMBLE_MODEL / "1").is_dir()
    trt = root / f"{WINDOW_MODEL}_tensorrt"
    assert (trt / "1" / "model.plan").read_bytes() == plan.read_bytes()
    assert not (root / f"{ENCODER_MODEL}_tensorrt").exists()  # no encoder plan was given
    assert set(report.models) == {ENCODER_MODEL, WINDOW_MODEL, trt.name, ENSEMBLE_MODEL}
    assert all(error < 1e-4 for error in report.parity.values())


@pytest.mark.parametrize("name", [ENCODER_MODEL, WINDOW_MODEL])
def test_each_config_declares_its_onnx_graph(repo, name):
    report, _ = repo
    config = _config(report, name)
    model_in, model_out = _graph(_session(report, name))

    def check(declared, actual):
        for tensor, (kind, dims) in declared.items():
            assert tensor in actual, f"{tensor} is not in the graph"
            got_type, got_shape = actual[tensor]
            assert got_type == ORT_TYPES[kind], tensor
            assert isinstance(got_shape[0], str) and got_shape[1:] == dims, tensor  # batch

    inputs, outputs = tensors(config, "input"), tensors(config, "output")
    check(inputs, model_in)
    check(outputs, model_out)
    controls, states = {}, {}
    if name == WINDOW_MODEL:
        batching = one(config, "sequence_batching")
        assert "oldest" in batching and "dynamic_batching" not in config
        for control in batching["control_input"]:
            (spec,) = control["control"]
            kind = one(spec, "data_type") if "data_type" in spec else "TYPE_FP32"
            if "fp32_false_true" in spec:
                assert spec["fp32_false_true"] == [0, 1]
            controls[one(control, "name")] = (kind, [1])
        assert tuple(controls) == CONTROL_INPUTS
        assert [one(c["control"][0], "kind") for c in batching["control_input"]] == [
            "CONTROL_SEQUENCE_START", "CONTROL_SEQUENCE_READY", "CONTROL_SEQUENCE_CORRID"
        ]  # fmt: skip
        check(controls, model_in)
        for state in batching["state"]:
            kind, dims = one(state, "data_type"), state["dims"]
            initial = one(state, "initial_state")
            assert one(initial, "zero_data") is True and initial["dims"] == dims
            states[one(state, "input_name")] = states[one(state, "output_name")] = (kind, dims)
            check({one(state, "input_name"): (kind, dims)}, model_in)
            check({one(state, "output_name"): (kind, dims)}, model_out)
        assert [(one(s, "input_name"), one(s, "output_name")) for s in batching["state"]] == (
            state_names()
        )
        ring = states["window_cloth_features"][1]
        assert ring[0] == FRAMES and states["window_slot"] == ("TYPE_INT32", [1])
    else:
        assert "max_queue_delay_microseconds" in one(config, "dynamic_batching")
        assert list(inputs) == list(INPUT_NAMES) and list(outputs) == list(FEATURE_NAMES)
    # nothing of the graph is left undeclared
    assert set(model_in) == set(inputs) | set(controls) | {s for s, _ in state_names()
                                                           if name == WINDOW_MODEL}  # fmt: skip
    assert set(model_out) == set(outputs) | {o for _, o in state_names() if name == WINDOW_MODEL}


def test_the_tensorrt_variant_declares_the_same_tensors(repo):
    report, _ = repo
    onnx_config = _config(report, WINDOW_MODEL)
    trt_config = _config(report, f"{WINDOW_MODEL}_tensorrt")
    assert one(trt_config, "platform") == "tensorrt_plan"
    assert one(trt_config, "name") == f"{WINDOW_MODEL}_tensorrt"
    for key in ("input", "output", "sequence_batching", "max_batch_size"):
        assert trt_config[key] == onnx_config[key]


def test_the_ensemble_ties_the_models_together(repo):
    report, _ = repo
    ensemble = _config(report, ENSEMBLE_MODEL)
    assert one(ensemble, "platform") == "ensemble"
    assert one(ensemble, "max_batch_size") == MAX_BATCH
    encoder = _config(report, ENCODER_MODEL)
    assert tensors(ensemble, "input") == tensors(encoder, "input")
    available = set(tensors(ensemble, "input"))
    steps = one(ensemble, "ensemble_scheduling")["step"]
    assert [one(s, "model_name") for s in steps] == [ENCODER_MODEL, f"{WINDOW_MODEL}_tensorrt"]
    for step in steps:
        config = _config(report, one(step, "model_name"))
        inputs = {one(m, "key"): one(m, "value") for m in step["input_map"]}
        outputs = {one(m, "key"): one(m, "value") for m in step["output_map"]}
        assert set(inputs) == set(tensors(config, "input")), "every model input is fed"
        assert set(inputs.values()) <= available, "from the ensemble inputs or earlier steps"
        assert set(outputs) <= set(tensors(config, "output"))
        available |= set(outputs.values())
    window = _config(report, WINDOW_MODEL)
    assert tensors(ensemble, "output") == {n: tensors(window, "output")[n] for n in OUTPUT_NAMES}
    assert set(tensors(ensemble, "output")) <= available


def _frame_inputs(model, rng):
    cfg = model.config
    return {n: torch.from_numpy(rng.random((1, c, cfg.height, cfg.width), np.float32))
            for n, c in cfg.input_channels.items()}  # fmt: skip


def test_the_window_model_keeps_each_stream_window_as_the_batched_generator(repo, model):
    """Two streams, the second starting a frame later, batched as Triton's oldest strategy
    would; a third batch slot with READY = 0 must leave its state untouched. Five frames wrap
    the ring of T = 4; a window that dropped its past would be off by ~0.07 here (demo model),
    far above the 1e-4 allowed."""
    report, _ = repo
    encoder, window = _session(report, ENCODER_MODEL), _session(report, WINDOW_MODEL)
    window_in, _ = _graph(window)
    out_names = [o.name for o in window.get_outputs()]
    reference = BatchedGenerator(model, FRAMES)
    windows = {0: reference.new_window(), 1: reference.new_window()}
    state: dict[int, dict[str, np.ndarray]] = {}
    rng = np.random.default_rng(7)
    compared = 0
    for step in range(5):
        streams = [s for s in (0, 1) if step >= s]
        frames = {s: _frame_inputs(model, rng) for s in streams}
        batch = {n: np.concatenate([frames[s][n].numpy() for s in streams]) for n in INPUT_NAMES}
        feats = dict(zip(FEATURE_NAMES, encoder.run(None, batch), strict=True))  # (B, ...)
        rows = {**feats, **{n: batch[n] for n in ("cloth", "background", "background_mask")}}
        request = {n: rows[n] for n in rows}
        request["START"] = np.array([[1.0 if step == s else 0.0] for s in streams], np.float32)
        request["READY"] = np.ones((len(streams), 1), np.float32)
        request["CORRID"] = np.array([[100 + s] for s in streams], np.int64)
        for state_in, _ in state_names():
            kind, shape = window_in[state_in]
            zeros = np.zeros(shape[1:], NP_TYPES[kind])
            request[state_in] = np.stack([state.get(s, {}).get(state_in, zeros) for s in streams])
        # a padding slot (READY = 0): any data, its state must come back unchanged
        for name in request:
            request[name] = np.concatenate([request[name], request[name][:1]])
        request["READY"][-1] = 0.0
        got = dict(zip(out_names, window.run(None, request), strict=True))
        assert got["sequence_id"][:, 0].tolist() == [100 + s for s in streams] + [100]
        for state_in, state_out in state_names():
            np.testing.assert_array_equal(got[state_out][-1], request[state_in][-1])
        with torch_threads(1):
            want = reference.step([windows[s] for s in streams], [frames[s] for s in streams])
        for b, s in enumerate(streams):
            state[s] = {state_in: got[state_out][b] for state_in, state_out in state_names()}
            for name in ("rendered", "cloth_mask"):
                assert np.abs(got[name][b] - want[b][name][0].numpy()).max() < 1e-4, (step, s)
            compared += 1
        assert got["window_slot_next"][:-1, 0].tolist() == [(step - s + 1) % FRAMES
                                                            for s in streams]  # fmt: skip
    assert compared == 9


def test_bad_arguments_are_refused_before_any_export(tmp_path, model):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (dict(max_batch=0), "max_batch"),
        (dict(frames=0), "frames"),
        (dict(precision="int8"), "precision"),
        (dict(window_plan=tmp_path / "missing.plan"), "window_plan"),
        (dict(max_sequences=0), "max_sequences"),
    ]
    for kwargs, argument in cases:
        with pytest.raises(InputError) as info:
            write_triton_repository(tmp_path / "repo", model, **kwargs)
        assert info.value.argument == argument
    with pytest.raises(InputError) as info:
        write_triton_repository(a_file, model)
    assert info.value.argument == "directory"
    with pytest.raises(InputError):
        write_triton_repository(tmp_path / "repo", "demo")
    assert not (tmp_path / "repo").exists()


def test_cli_export_writes_a_triton_repository(tmp_path, capsys):
    from engine.cli.main import main
    from tests.runtime_fixtures import tiny_model_file

    weights = tiny_model_file(tmp_path)
    code = main(["export", "--model", str(weights), "--out", str(tmp_path / "out"),
                 "--triton-repository", str(tmp_path / "triton"),
                 "--triton-max-batch", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "Triton model repository" in out
    window = parse_pbtxt((tmp_path / "triton" / WINDOW_MODEL / "config.pbtxt").read_text())
    assert one(window, "max_batch_size") == 2
    ring = {one(s, "input_name"): s["dims"] for s in one(window, "sequence_batching")["state"]}
    assert ring[f"window_{RING_NAMES[0]}"][0] == 2  # the tiny model's T
    assert main(["export", "--model", str(weights), "--out", str(tmp_path / "out2"),
                 "--triton-max-batch", "2"]) == 1  # fmt: skip
    assert "--triton-max-batch" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
