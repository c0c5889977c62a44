"""Every known mistake loses points on the function it breaks, and only there.

All mutants are graded once per session, two at a time, with the learning
tests skipped (a broken loss would also break training, which the reference
run covers); each test then checks one mutant's report.
"""
from __future__ import annotations

import pytest

from autograder.exercises import BY_NAME

from conftest import feedback_of, scores_by_function
from mutants import MUTANTS, Mutant


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
