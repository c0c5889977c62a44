"""`make gpu-check` on a machine without CUDA, the device choice in common/device.py, and the check's own parts.

The GPU half of scripts/gpu_check.py can only run where CUDA is; here we test
what does not need it: the clear early exit, the device selection, the
install spec, the CPU/CUDA comparison machinery (with the CPU standing in for
CUDA), the report and the verdict.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import types

import pytest
import torch

from common.device import get_device
from scripts import bench, gpu_check

from conftest import ROOT

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


# ------------------------------------------------------------------ the early exit without CUDA


@no_cuda
def test_gpu_check_without_cuda_exits_at_once_with_a_clear_message(tmp_path):
    out = tmp_path / "gpu-check"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "scripts.gpu_check", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t0
    assert proc.returncode == gpu_check.EXIT_NO_CUDA == 3, proc.stdout + proc.stderr
    msg = proc.stderr.strip()
    assert msg.startswith("gpu-check: CUDA is not available on this machine"), msg
    assert f"torch {torch.__version__}" in msg
    assert ("built for CPU" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}") in msg
    assert "NVIDIA GPU" in msg
    assert "Traceback" not in proc.stderr
    assert seconds < 60, f"took {seconds:.0f} s: it should stop before doing any work"
    assert not out.exists(), "nothing is written when CUDA is missing"


def test_cuda_problem_names_the_torch_build():
    def fake(version, cuda, available):
        return types.SimpleNamespace(__version__=version, version=types.SimpleNamespace(cuda=cuda),
                                     cuda=types.SimpleNamespace(is_available=lambda: available))

    cpu = gpu_check.cuda_problem(fake("2.13.0+cpu", None, False))
    assert "CUDA is not available" in cpu and "torch 2.13.0+cpu, built for CPU" in cpu and "--install" in cpu
    no_gpu = gpu_check.cuda_problem(fake("2.13.0", "13.0", False))
    assert "built for CUDA 13.0" in no_gpu and "finds no usable GPU" in no_gpu
    assert gpu_check.cuda_problem(fake("2.13.0", "13.0", True)) is None


# ------------------------------------------------------------------ common/device.py


def test_get_device_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for request in ("cuda", "cuda:1", "CUDA", torch.device("cuda")):
        with pytest.raises(RuntimeError, match="CUDA is not available") as info:
            get_device(request)
        assert "cuda" in str(info.value).lower()


def test_get_device_auto_and_none_pick_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for request in (None, "auto", "AUTO", "cpu", torch.device("cpu")):
        assert get_device(request) == torch.device("cpu"), request


def test_get_device_auto_picks_cuda_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("auto").type == "cuda"
    assert get_device(None).type == "cuda"
    assert get_device("cpu") == torch.device("cpu")  # an explicit CPU stays the CPU
    assert get_device("cuda:1") == torch.device("cuda:1")


def test_get_device_rejects_other_types():
    with pytest.raises(TypeError):
        get_device(0.5)


# ------------------------------------------------------------------ --install (never run here)


def test_install_spec_and_command():
    version = gpu_check.pinned_torch_version()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^TORCH_SPEC\s*\?=\s*torch=={re.escape(version)}\s*$", makefile, re.M)
    # PyPI: exactly that version string, so a local "+cpu" build of the same version cannot satisfy it
    assert gpu_check.install_spec(version, None) == f"torch==={version}"
    assert gpu_check.install_spec(version, "https://download.pytorch.org/whl/cu126") == f"torch=={version}+cu126"
    assert gpu_check.install_spec(version, "https://example.invalid/simple/") == f"torch=={version}"
    cmd = gpu_check.install_command("torch===2.13.0", None, python="py")
    assert cmd == ["py", "-m", "pip", "install", "--upgrade", "torch===2.13.0"]
    assert gpu_check.install_command("x", "URL", python="py")[-2:] == ["--index-url", "URL"]


def test_makefile_has_the_gpu_check_target():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^gpu-check: venv\n\t\$\(PY\) -m scripts\.gpu_check \$\(ARGS\)$", makefile, re.M)
    phony = " ".join(re.findall(r"^\.PHONY:((?:[^\n]*\\\n)*[^\n]*)", makefile, re.M))
    assert "gpu-check" in phony.split()


# ------------------------------------------------------------------ the comparison machinery


def test_simulated_compare_covers_every_reference_function_and_writes_the_report(tmp_path):
    out = tmp_path / "report"
    rc = gpu_check.main(["--simulate-on-cpu", "--skip", "grade", "--skip", "train", "--skip", "scripts",
                         "--out", str(out)])
    assert rc == gpu_check.EXIT_OK
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True and report["environment"]["simulated_on_cpu"] is True
    comp = report["comparison"]
    assert comp["rows"] and all(r["ok"] for r in comp["rows"])
    assert all(r["max_abs_diff"] == 0 for r in comp["rows"])  # the CPU against itself
    compared = {s["function"] for s in comp["summary"]}
    skipped = {s["function"] for s in comp["skipped"]}
    from solutions import ex1_values, ex2_reinforce, ex3_baseline, ex4_ppo, ex5_rlhf

    public = {name for m in (ex1_values, ex2_reinforce, ex3_baseline, ex4_ppo, ex5_rlhf) for name in m.__all__
              if callable(getattr(m, name)) and not isinstance(getattr(m, name), type)}
    public.discard("run_toy_rlhf")  # a training pipeline, run on the CPU by its suite
    assert public - compared - skipped == set(), "a reference function is neither compared nor listed as skipped"
    assert any(r["output"].startswith("grad.") for r in comp["rows"])
    assert any(r["output"].startswith("step.") for r in comp["rows"])
    md = (out / "report.md").read_text()
    assert md.startswith("**SIMULATED ON THE CPU")
    assert "| ex3_baseline | `compute_gae` |" in md and "all checks passed" in md


def _case(values, **kw):
    """A Case whose first call (the baseline) returns values[0] and whose second returns values[1]."""
    calls = iter(values)
    return gpu_check.Case("exN", "f", "synthetic", lambda dev: {"out": next(calls)}, **kw)


def test_compare_case_applies_the_tolerances():
    one = torch.tensor([1.0, -2.0, 3.0])
    ok = gpu_check.compare_case(_case([one, one + 1e-6]), "cpu")[0]
    assert ok["ok"] and 0 < ok["max_abs_diff"] < 2e-6 and ok["rtol"] == 1e-4 and ok["atol"] == 1e-5
    bad = gpu_check.compare_case(_case([one, one + torch.tensor([0.0, 0.0, 1e-3])]), "cpu")[0]
    assert not bad["ok"] and "beyond" in bad["problem"] and bad["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    loose = gpu_check.compare_case(_case([one, one + 1e-3], rtol=0.0, atol=1e-2), "cpu")[0]
    assert loose["ok"]
    flags = torch.tensor([True, False, True])
    diff = gpu_check.compare_case(_case([flags, torch.tensor([True, True, True])]), "cpu")[0]
    assert not diff["ok"] and diff["problem"] == "1 element(s) differ"
    dtype = gpu_check.compare_case(_case([one, one.double()]), "cpu")[0]
    assert not dtype["ok"] and "float64" in dtype["problem"]

    def crash(dev):
        raise RuntimeError("boom")

    crashed = gpu_check.compare_case(gpu_check.Case("exN", "f", "c", crash), "cpu")
    assert crashed[0]["ok"] is False and "boom" in crashed[0]["problem"]


def test_parameter_steps_use_the_suites_relative_tolerance():
    step = torch.tensor([0.01, -0.01, 0.0])
    near = gpu_check.compare_case(_case([step, step + 1e-6], step_tol=2e-3), "cpu")  # output name "out": default tol
    assert near[0]["ok"]
    calls = iter([{"step.w": step}, {"step.w": step + torch.tensor([0.0, 0.0, 1e-4])}])
    far = gpu_check.compare_case(gpu_check.Case("exN", "f", "c", lambda dev: next(calls), step_tol=2e-3), "cpu")[0]
    assert not far["ok"] and far["atol"] == pytest.approx(2e-3 * 0.01 + 1e-7, rel=1e-6)


def test_training_specs_come_from_the_suites():
    specs = {s["function"]: s for s in gpu_check.training_specs()}
    assert set(specs) == {"train_reinforce", "train_actor_critic", "train_ppo"}
    for s in specs.values():
        assert s["seeds"] and s["threshold"] > 0 and s["eval_episodes"] > 0
    assert specs["train_ppo"]["threshold"] == 475.0


def test_verdict_fails_on_a_grade_a_difference_or_a_missed_threshold(tmp_path):
    env = {"date": "d", "python": "3", "cpu_count": 2, "torch": "t", "torch_cuda": "13.0", "device": "cuda",
           "simulated_on_cpu": False, "gpu": "GPU X", "gpu_capability": "9.0", "gpu_memory_gib": 1.0}
    good = {"environment": env, "out": str(tmp_path), "errors": [],
            "grades": [{"folder": "solutions", "device": "cuda", "total": 120, "max_total": 120, "expect": "full",
                        "ok": True, "seconds": 1.0, "problems": [], "rc": 0}],
            "comparison": {"device": "cuda", "base": "cpu", "rows": [], "skipped": [],
                           "summary": [{"exercise": "ex1_values", "function": "f", "outputs": 1, "max_abs_diff": 1e-7,
                                        "max_rel_diff": 1e-7, "worst": "c / out",
                                        "tolerance": "rtol=0.0001, atol=1e-05",
                                        "ok": True, "problems": []}]},
            "training": [{"function": "train_ppo", "device": "cuda", "budget": "50000 env steps", "threshold": 475.0,
                          "suite_budget_s": 120.0, "counts": True, "ok": True,
                          "runs": [{"seed": 1, "env_steps": 9000, "updates": 18, "seconds": 20.0, "greedy_mean": 500.0,
                                    "met": True}]}],
            "scripts": []}
    assert gpu_check.verdict(good) == (True, [])
    js, md = gpu_check.write_report(good, tmp_path)
    assert json.loads(js.read_text())["ok"] is True
    assert "GPU X" in md.read_text() and "all checks passed" in md.read_text()

    bad = json.loads(json.dumps(good))
    bad["grades"][0].update(total=118.5, ok=False)
    bad["comparison"]["summary"][0].update(ok=False, problems=["c / out: beyond rtol=0.0001, atol=1e-05"])
    bad["training"][0].update(ok=False)
    bad["training"][0]["runs"][0].update(greedy_mean=200.0, met=False)
    ok, failures = gpu_check.verdict(bad)
    assert not ok and len(failures) == 3
    _, md = gpu_check.write_report(bad, tmp_path)
    assert "FAILED" in md.read_text() and "118.5/120" in md.read_text()


# ------------------------------------------------------------------ scripts.bench --device


def test_bench_takes_a_device_and_refuses_cuda_without_it(monkeypatch, capsys):
    assert bench.parse_args([]).device == "cpu"
    assert bench.parse_args(["--device", "cuda"]).device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--sb3-seeds", "0", "--kit-seeds", "1", "--device", "cuda"]) == 2
    finally:
        torch.set_num_threads(threads)
    assert "CUDA is not available" in capsys.readouterr().err
