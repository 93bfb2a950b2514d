"""bench/device_check.py on CPU tensors (small sizes): everything but the CUDA-only parts
(compilation happens on the GPU machine; here the kernels run in Triton's interpreter)."""

import json

from bench.device_check import check_kernels, generator_step, kernel_cases, run
from engine.model.weights import load_generator
from tests.runtime_fixtures import tiny_model_file


def test_every_public_op_has_a_case_and_the_cases_pass_on_cpu():
    import torch

    import kernels

    cpu = torch.device("cpu")
    covered = {name.split()[0] for name, *_ in kernel_cases(cpu, small=True)}
    plugins = {"composite_plugin", "patch_attention_plugin", "paste"}  # checked by their tests
    public = {n for n in kernels.__all__ if not n.endswith("_ref")} - plugins
    assert public <= covered, public - covered
    result = check_kernels(cpu, small=True)
    assert result["cases"] > 30 and result["failures"] == 0, [
        k for k, v in result["results"].items() if not v["ok"]
    ]


def test_a_wrong_kernel_is_reported_as_a_failure(monkeypatch):
    import torch

    import kernels

    monkeypatch.setattr(kernels, "box_blur", lambda x, k, impl: kernels.box_blur_ref(x, k + 2))
    result = check_kernels(torch.device("cpu"), small=True)
    failed = {k for k, v in result["results"].items() if not v["ok"]}
    assert failed and all(k.startswith("box_blur") for k in failed)


def test_the_report_has_every_section(tmp_path):
    model = load_generator(tiny_model_file(tmp_path))
    path = run(tmp_path / "out", cpu=True, model=model)
    report = json.loads(path.read_text())
    assert report["device"] == "cpu"
    for name in ("environment", "kernels", "kernel_bandwidth", "generator"):
        assert report[name]["status"] == "ok", report[name]
    assert report["generator"]["result"]["fp32 eager"]["median_ms"] > 0
    step = generator_step(torch_cpu(), model)
    assert set(step) == {"fp32 eager"}


def torch_cpu():
    import torch

    return torch.device("cpu")
