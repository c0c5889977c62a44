"""Every known mistake loses points on the function it breaks, and only there.

All mutants are graded once per session, two at a time, with the learning
tests skipped (a broken loss would also break training, which the reference
run covers); each test then checks one mutant's report.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from autograder.exercises import BY_NAME
from autograder.runner import grade

from conftest import ROOT, feedback_of, make_submission, scores_by_function
from mutants import MUTANTS, Mutant


def apply(m: Mutant) -> str:
    src = (ROOT / "solutions" / f"{m.module}.py").read_text()
    count = src.count(m.old)
    assert count == 1, f"mutant {m.name}: snippet found {count} times in solutions/{m.module}.py"
    return src.replace(m.old, m.new)


@pytest.fixture(scope="session")
def mutant_reports(request, tmp_path_factory):
    def one(m: Mutant):
        try:
            src = apply(m)
        except AssertionError as exc:  # a stale snippet fails that mutant only
            return m.name, {"apply_error": str(exc)}
        folder = make_submission(tmp_path_factory.mktemp(m.name), {f"{m.module}.py": src})
        return m.name, grade(folder, [m.module], jobs=1, skip_learning=True)

    # grade only the mutants this session selected (e.g. with -k)
    wanted = {item.callspec.params["m"].name for item in request.session.items
              if hasattr(item, "callspec") and "m" in item.callspec.params}
    # create the session's base temp dir here, before the threads: pytest makes it lazily and
    # two threads making it at once can each see the other's ("not a normalized ... path")
    tmp_path_factory.getbasetemp()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, [m for m in MUTANTS if m.name in wanted]))


def test_mutant_names_are_unique():
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


def test_mutants_break_functions_students_write():
    """Given code comes from the kit, never from the submission: a mistake there cannot cost points."""
    assert [m.name for m in MUTANTS if m.function not in BY_NAME[m.module].functions] == []


@pytest.mark.parametrize("m", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_loses_points_where_it_lives(m: Mutant, mutant_reports):
    report = mutant_reports[m.name]
    assert "apply_error" not in report, report.get("apply_error")
    assert report["errors"] == []
    scores = scores_by_function(report)
    score, mx = scores[(m.module, m.function)]
    assert score < mx, f"{m.name}: {m.function} kept full marks"
    # a training function's points need the functions it trains with (Exercise.trains_with)
    gated = {fn for fn, needs in BY_NAME[m.module].trains_with.items() if m.function in needs}
    for (ex, fn), (s, x) in scores.items():
        if fn != m.function and fn not in m.also and fn not in gated:
            assert s == x, f"{m.name}: {fn} lost points: {feedback_of(report, fn)}"
    if m.phrase:
        fb = feedback_of(report, m.function)
        assert any(m.phrase in f for f in fb), f"{m.name}: no feedback names the mistake: {fb}"
