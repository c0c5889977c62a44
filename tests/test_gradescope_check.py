"""The pieces of ``make gradescope-check`` that need no root (the check itself is not in CI)."""
from __future__ import annotations

import json
import zipfile

from autograder import report as rep
from tools import gradescope_check as gc


def _results(**top):
    tests = [{"name": "ex1_values.discounted_returns: one env", "score": 1.5, "max_score": 1.5, "output": "passed",
              "visibility": "visible"},
             {"name": "ex1_values.discounted_returns: edge cases", "score": 0.0, "max_score": 1.0,
              "output": "discounted_returns() is not implemented yet", "visibility": "visible"}]
    return {"score": 1.5, "output": "Sandbox: ...", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests, **top}


def test_validate_accepts_what_the_kit_writes():
    assert gc.validate(_results()) == []
    report = {"submission": "x", "device": "cpu", "sandbox": "strict", "errors": [], "protections": [],
              "seconds": 1.0, "total": 1.0, "max_total": 2.0,
              "exercises": [{"name": "ex1_values", "score": 1.0, "max_score": 2.0, "module_present": True,
                             "tests": [{"name": "a", "id": "t1", "function": "f", "score": 1.0, "max_score": 1.0,
                                        "passed": True, "feedback": ""},
                                       {"name": "b", "id": "t2", "function": "f", "score": 0.0, "max_score": 1.0,
                                        "passed": False, "feedback": "f(): wrong"}]}]}
    assert gc.validate(rep.gradescope(report)) == []


def test_validate_names_what_gradescope_would_reject():
    bad = _results(score=2.0, visibility="students", extra=1)
    bad["tests"][0]["max_score"] = "1.5"
    bad["tests"][1]["score"] = 3.0
    del bad["tests"][1]["output"]
    problems = "\n".join(gc.validate(bad))
    for needle in ("unknown top-level key 'extra'", "visibility = 'students'", "tests[0].max_score has type str",
                   "tests[1] lacks output", "not the sum", "outside [0, 1.0]"):
        assert needle in problems, problems
    assert gc.validate([]) == ["results.json is not a JSON object"]
    assert gc.validate({"score": float("nan"), "tests": []})  # not plain JSON


def test_expect_knows_the_three_uploads():
    ok = _results()
    assert gc.expect("solutions", ok, 2.5, 2) == ["score 1.5, expected 2.5 (lost: ['ex1_values.discounted_returns: edge cases'])"]
    notebook = {"score": 0.0, "tests": [], "visibility": "visible",
                "output": "Notebooks (.ipynb) are not graded here. Upload ex1_values.py ...\n\nFiles received: ex1_values.ipynb"}
    assert gc.expect("notebook", notebook, 120, 70) == []


def test_pip_settings_travel_into_the_root(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    index = tmp_path / "pypi" / "simple"
    index.mkdir(parents=True)
    wheels.mkdir()
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")
    root = tmp_path / "root"
    env, binds = gc.localize({"PIP_FIND_LINKS": str(wheels), "PIP_EXTRA_INDEX_URL": f"file://{index} https://x/simple",
                              "PIP_CERT": str(ca), "PIP_DEFAULT_TIMEOUT": "180"}, root)
    assert binds == [str(wheels), str(tmp_path / "pypi")]  # a file:// index: the folder above simple/
    assert env["PIP_FIND_LINKS"] == str(wheels)
    assert env["PIP_EXTRA_INDEX_URL"] == f"file://{index} https://x/simple"
    assert env["PIP_CERT"].startswith(gc.HOST_FILES) and (root / env["PIP_CERT"].lstrip("/")).read_text() == "CERT"
    assert env["PIP_DEFAULT_TIMEOUT"] == "180"
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    assert gc.pip_settings()["PIP_NO_CACHE_DIR"] == "1"


def test_unpack_keeps_the_executable_bits(tmp_path):
    z = tmp_path / "g.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("run_autograder")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, "#!/bin/sh\n")
        zf.writestr("autograder/x.py", "")
    gc.unpack(z, tmp_path / "out")
    assert (tmp_path / "out" / "run_autograder").stat().st_mode & 0o111
    assert json.dumps(gc.uploads()["notebook"], default=str)
