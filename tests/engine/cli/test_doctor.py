import json
import os
import shutil
import subprocess
import sys

import pytest

from engine.cli import doctor
from engine.cli import main as cli


def _run_tryon(*args: str) -> subprocess.CompletedProcess:
    """Run the installed console script (falls back to `python -m engine.cli.main`)."""
    exe = shutil.which("tryon")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "engine.cli.main", *args]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_tryon_doctor_reports_and_exits_zero_here():
    proc = _run_tryon("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for name in (
        "python",
        "torch",
        "triton",
        "tensorrt",
        "cuda-python",
        "onnxruntime",
        "mediapipe",
        "opencv",
        "demo model",
        "backend=auto",
    ):
        assert f"] {name} " in out, f"{name} missing from:\n{out}"
    # Triton says how kernels will run; TensorRT says its version or how to get it.
    triton_line = next(line for line in out.splitlines() if "] triton " in line)
    assert any(mode in triton_line for mode in ("compiled", "interpreted", "unavailable"))
    trt_line = next(line for line in out.splitlines() if "] tensorrt " in line)
    assert "not installed: pip install" in trt_line or "[  ok]" in trt_line
    auto_line = next(line for line in out.splitlines() if "] backend=auto " in line)
    assert any(f"{b} on" in auto_line for b in ("tensorrt", "onnxruntime", "torch"))
    assert out.rstrip().endswith("healthy: every required part is present")


def test_tryon_doctor_json():
    proc = _run_tryon("doctor", "--json")
    report = json.loads(proc.stdout)
    names = [c["name"] for c in report["checks"]]
    assert {"triton", "tensorrt", "backend=auto"} <= set(names)
    assert report["exit_code"] == proc.returncode == 0
    assert all(c["status"] in {"ok", "info", "fail"} for c in report["checks"])


def test_interpreter_mode_is_reported():
    # conftest set TRITON_INTERPRET=1 on this CPU machine, so the in-process report says so.
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("TRITON_INTERPRET is not 1 in this process")
    check = doctor.check_triton()
    assert check.status == "ok" and "interpreted" in check.detail


def test_missing_mediapipe_models_break_the_install(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "MEDIAPIPE_MODELS", ("modules/pose_landmark/not_shipped.tflite",))
    check = doctor.check_mediapipe()
    assert check.status == "fail"
    assert "not_shipped.tflite" in check.detail and "0.10.21" in check.detail
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[fail] mediapipe" in out
    assert "BROKEN: mediapipe" in out


def test_missing_demo_weights_break_the_install(monkeypatch, tmp_path):
    import engine.model.weights

    monkeypatch.setattr(engine.model.weights, "MODELS_DIR", tmp_path)
    check = doctor.check_demo_model()
    assert check.status == "fail" and "missing" in check.detail
    (tmp_path / "demo.safetensors").write_bytes(b"junk")
    assert doctor.check_demo_model().status == "fail"


def test_a_crashing_check_becomes_a_fail_line():
    def check_flaky():
        raise OSError("driver went away")

    checks = doctor.run_checks([doctor.check_python, check_flaky])
    assert checks[1] == doctor.Check("flaky", "fail", "check crashed: OSError: driver went away")
    assert doctor.exit_code(checks) == 1
    assert doctor.exit_code(checks[:1]) == 0


def test_cli_requires_a_verb(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
