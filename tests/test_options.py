"""GradingOptions: one object from the command line to the suite process, secrets never on a command line."""
from __future__ import annotations

import pytest

from autograder.options import GradingOptions
from autograder.runner import grade

from conftest import ROOT


def test_options_survive_the_trip_to_the_suite_process_except_the_seed():
    opts = GradingOptions(device="cuda:1", sandbox="strict", allow_weak=True, course_seed="spring-secret",
                          skip_learning=True, suite_timeout=12.5, jobs=3)
    back = GradingOptions.from_json(opts.to_json())
    assert back == opts.replace(course_seed=None)
    assert back.strict and not GradingOptions().strict
    assert "spring-secret" not in opts.to_json() and "spring-secret" not in " ".join(opts.cli_args())
    assert opts.cli_args() == ["--device", "cuda:1", "--sandbox", "strict", "--allow-weak-sandbox", "--jobs", "3"]


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="sandbox must be one of"):
        GradingOptions(sandbox="loose")
    with pytest.raises(ValueError, match=r"unknown grading options \['colour'\]"):
        GradingOptions.from_json('{"colour": "red"}')


def test_the_course_seed_reaches_the_suites_through_the_environment():
    """The seed is left off the suite's command line, yet it still changes the inputs (the report's
    fingerprint says which), and keyword arguments still change single options."""
    official = grade(ROOT / "solutions", ["ex1_values"], GradingOptions(jobs=1), course_seed="spring-2027")
    published = grade(ROOT / "solutions", ["ex1_values"], jobs=1)
    assert official["inputs"].startswith("course:") and published["inputs"] == "published"
    assert official["total"] == published["total"] == official["max_total"]
