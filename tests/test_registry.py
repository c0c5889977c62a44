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
