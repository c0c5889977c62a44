"""The exercise registry (autograder/exercises.py) agrees with the reference and the stubs."""
from __future__ import annotations

import ast

import pytest

from autograder.exercises import EXERCISE_LIST, ORDER, earlier, is_given
from autograder.given import given_source
from autograder.regions import region_functions, solution_regions

from conftest import ROOT


def top_level_names(source: str) -> set[str]:
    return {n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("ex", EXERCISE_LIST, ids=[e.name for e in EXERCISE_LIST])
def test_registry_matches_the_solution_regions(ex):
    src = (ROOT / "solutions" / f"{ex.name}.py").read_text()
    assert sorted(region_functions(src)) == sorted(ex.functions)
    names = top_level_names(src)
    assert set(ex.given) <= names, set(ex.given) - names
    for fn, deps in ex.uses.items():
        assert fn in names
        for module, dep in deps:
            assert module in earlier(ex.name), (fn, module)
            assert dep in top_level_names((ROOT / "solutions" / f"{module}.py").read_text())


@pytest.mark.parametrize("name", ORDER)
def test_given_code_holds_no_answer(name):
    text = given_source(name)
    assert "### BEGIN SOLUTION" not in text
    ref = (ROOT / "solutions" / f"{name}.py").read_text()
    region = [line for lines in solution_regions(ref) for line in lines
              if len(line.strip()) >= 20 and not line.strip().startswith("# TODO")]
    assert region and not [line for line in region if line in text.splitlines()]
    ex = next(e for e in EXERCISE_LIST if e.name == name)
    assert all(is_given(name, g) for g in ex.given)
    assert not any(is_given(name, f) for f in ex.functions)


TOY_SOLUTION = '''"""A throw-away exercise: double a tensor."""
import torch


def double(x: torch.Tensor) -> torch.Tensor:
    """``2 * x``, same shape and dtype as ``x``."""
    ### BEGIN SOLUTION
    # TODO: return twice the input
    return 2 * x
    ### END SOLUTION
'''

TOY_ANSWERS = '''"""Answers for the ex6_toy suite."""
from solutions.ex6_toy import double  # noqa: F401 (the seam's)
'''

TOY_SUITE = '''"""Hidden suite for ex6_toy (2 points)."""
import pytest
import torch

from autograder.harness import Call, compare
from autograder.oracle import answers

M = "ex6_toy"
ref = answers(M)


@pytest.mark.function("double")
@pytest.mark.points(2)
def test_double(sub, dev):
    """doubles a tensor"""
    compare(sub, dev, M, "double", [Call(torch.arange(4.0)), Call(torch.ones(2, 3))], ref.double)
'''


def test_a_new_exercise_needs_its_registry_row_and_its_own_files_only(tmp_path):
    """Register a throw-away exercise in a copy of the kit: its row, its solution, its answers and its
    suite are all it takes for `make assignments` to write its stub and for the runner to grade it."""
    import hashlib
    import json
    import shutil
    import subprocess
    import sys

    kit = tmp_path / "kit"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in tracked.decode().split("\0"):
        if rel and (ROOT / rel).is_file():
            (kit / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, kit / rel)

    def digests() -> dict:
        return {p.relative_to(kit).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in kit.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    registry = kit / "autograder" / "exercises.py"
    text = registry.read_text()
    row = 'EXERCISE_LIST = EXERCISE_LIST + (Exercise("ex6_toy", 2, ("double",)),)\n\n'
    registry.write_text(text.replace("\nBY_NAME", "\n" + row + "BY_NAME", 1))
    own = {"solutions/ex6_toy.py": TOY_SOLUTION, "autograder/answers/ex6_toy.py": TOY_ANSWERS,
           "autograder/suites/test_ex6_toy.py": TOY_SUITE}
    for rel, body in own.items():
        (kit / rel).write_text(body)
    before = digests()

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=kit, capture_output=True, text=True, timeout=600,
                              # another kit: none of this session's settings (RLKIT_SEAM_LOG logs this kit's answers)
                              env={k: v for k, v in __import__("os").environ.items()
                                   if k != "PYTHONPATH" and not k.startswith("RLKIT_")})

    made = run("-m", "tools.make_assignments")
    assert made.returncode == 0, made.stderr
    changed = {k for k, v in digests().items() if before.get(k) != v}
    assert changed == {"assignments/ex6_toy.py"}, changed  # only the new stub, nothing else rewritten
    stub = (kit / "assignments" / "ex6_toy.py").read_text()
    assert "raise NotImplementedError" in stub and "return 2 * x" not in stub

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "ex6_toy.py").write_text("def double(x):\n    return 3 * x\n")
    for folder, expected in ((kit / "solutions", 2.0), (wrong, 0.0), (kit / "assignments", 0.0)):
        out = tmp_path / f"{folder.name}.json"
        graded = run("-m", "autograder", str(folder), "--exercise", "ex6_toy", "--json", str(out))
        assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
        report = json.loads(out.read_text())
        (ex,) = report["exercises"]
        assert ex["name"] == "ex6_toy" and ex["max_score"] == 2 and ex["score"] == expected, ex
        if folder == kit / "assignments":
            assert "not implemented" in ex["tests"][0]["feedback"].lower(), ex["tests"][0]
