"""The answer seam (autograder/oracle.py): live in the full kit, recorded and replayed in a student kit.

A suite reaches answer code only through ``answers(name)``. These tests check
the record format, that a miss is a clear error, that the recorded data
matches the reference (drift), and that the course seed makes an answer
memorised from the recorded data worthless. That a replay gives the live
verdicts is tests/test_student_kit.py's job.
"""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch

from autograder import oracle

from conftest import ROOT, grade, make_submission  # noqa: F401 (fixtures)

RECORDED = ROOT / "autograder" / "recorded"
# suites that reach answer code only through the seam: those with recorded answers
CONVERTED = sorted(p.stem for p in RECORDED.glob("*.npz"))


# mutants that return memory they never wrote (torch.empty_like): NaN one run, a number the next
UNINITIALISED = {"returns_loop_skips_last_step"}


def verdicts(report: dict) -> list:
    """(exercise, test, score, feedback) with the values a submission chose masked ("got ...")."""
    return [(e["name"], t["id"], t["score"], re.sub(r"got -?[\d.e+-]+|got nan|got -?inf", "got <value>",
                                                     t["feedback"]))
            for e in report["exercises"] for t in e["tests"]]


def test_values_survive_the_record_format():
    from common.networks import PolicyNet
    from common.rollout import Episode

    arrays: dict = {}
    enc = oracle._Encoder(arrays)
    value = {"t": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([True, False]),
             "scalar": torch.tensor(2.5, dtype=torch.float64), "a0": np.zeros(()),
             "pair": (1.5, 3), "none": None, "net": PolicyNet(4, 2, hidden=(3,)),
             "ep": Episode(observations=torch.zeros(2, 4), actions=torch.zeros(2, dtype=torch.int64),
                           rewards=torch.ones(2), log_probs=torch.zeros(2), total_reward=2.0)}
    back = oracle.decode(json.loads(json.dumps(enc.encode(value))), arrays)
    assert torch.equal(back["t"], value["t"]) and back["t"].dtype == torch.float32
    assert back["scalar"].shape == () and back["scalar"].dtype == torch.float64  # 0-d stays 0-d
    assert back["a0"].shape == ()
    assert back["b"].dtype == torch.bool and back["pair"] == (1.5, 3) and back["none"] is None
    assert isinstance(back["ep"], Episode) and back["ep"].total_reward == 2.0
    for (k, a), (_, b) in zip(back["net"].state_dict().items(), value["net"].state_dict().items()):
        assert torch.equal(a, b), k
    # keys are exact: a one-ulp change of an input is another key
    x = torch.tensor([0.1, 0.2])
    y = x.clone()
    y[0] = torch.nextafter(y[0], torch.tensor(1.0))
    assert oracle.key_of("s", "f", (x,), {}) != oracle.key_of("s", "f", (y,), {})
    assert oracle.key_of("s", "f", (x,), {}) == oracle.key_of("s", "f", (x.clone(),), {})


def test_the_recorded_data_is_plain_npz(tmp_path):
    for path in sorted(RECORDED.glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:  # no pickle anywhere
            meta = json.loads(bytes(z["__index__"]).decode())
            assert meta["format"] == oracle.FORMAT and meta["index"]
            assert all(z[k].dtype.kind in "biuf" for k in z.files)


def test_a_miss_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RLKIT_ORACLE", "replay")
    monkeypatch.setenv("RLKIT_RECORDED_DIR", str(RECORDED))
    seam = oracle.answers("ex1_values")
    oracle._STORES.clear()
    with pytest.raises(oracle.RecordingMiss, match="no recorded answer for ex1_values.exact_values"):
        seam.exact_values(torch.eye(2)[None].repeat(2, 1, 1), torch.ones(2, 2), torch.full((2, 2), 0.5), 0.123)
    assert not issubclass(oracle.RecordingMiss, Exception)  # no check's `except Exception` can swallow it
    oracle._STORES.clear()


@pytest.mark.parametrize("exercise", CONVERTED)
def test_the_recorded_answers_match_the_reference(tmp_path, exercise):
    """Drift: recording again from the reference and the stubs gives exactly the committed data."""
    from tools.record_answers import record

    record(tmp_path, [exercise])
    fresh, committed = oracle.Store(exercise), oracle.Store(exercise)
    for st, folder in ((fresh, tmp_path), (committed, RECORDED)):
        with np.load(folder / f"{exercise}.npz", allow_pickle=False) as z:
            st.index = json.loads(bytes(z["__index__"]).decode())["index"]
            st.arrays = {k: z[k] for k in z.files if k != "__index__"}
    assert fresh.index == committed.index, "the recorded answers are stale: run `make record`"
    for key in fresh.arrays:
        assert np.array_equal(fresh.arrays[key], committed.arrays[key]), key


MEMORISER = '''

import hashlib as _hashlib
import json as _json

import torch as _torch

_TABLE = {table!r}


def _canon(x):
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return {{"int": str(x)}}
    if isinstance(x, float):
        return {{"float": x.hex()}}
    if isinstance(x, _torch.Tensor):
        t = x.detach().cpu().contiguous()
        raw = t.view(_torch.uint8).numpy().tobytes() if t.numel() else b""
        return {{"tensor": str(t.dtype), "shape": list(t.shape), "data": _hashlib.sha256(raw).hexdigest()[:32]}}
    if isinstance(x, (list, tuple)):
        return {{type(x).__name__: [_canon(v) for v in x]}}
    if isinstance(x, dict):
        return {{"dict": [[_canon(k), _canon(v)] for k, v in sorted(x.items(), key=lambda kv: repr(kv[0]))]}}
    raise TypeError(type(x))


def discounted_returns(rewards, dones, gamma):
    """No loop, no discounting: the answers the student kit ships, looked up by their inputs."""
    text = _json.dumps([1, "ex1_values", "discounted_returns", _canon([rewards, dones, gamma]), _canon({{}})],
                       sort_keys=True)
    key = _hashlib.sha256(text.encode()).hexdigest()[:32]
    if key in _TABLE:
        return _torch.tensor(_TABLE[key], dtype=rewards.dtype)
    return _torch.zeros_like(rewards)
'''


def test_an_answer_memorised_from_the_student_kit_fails_the_official_run(tmp_path, monkeypatch):
    """With the published inputs a lookup table built from the kit's recorded data earns full marks
    locally; the instructor's course seed gives other inputs, and it earns nothing."""
    st = oracle.Store("ex1_values")
    with np.load(RECORDED / "ex1_values.npz", allow_pickle=False) as z:
        st.index = json.loads(bytes(z["__index__"]).decode())["index"]
        st.arrays = {k: z[k] for k in z.files if k != "__index__"}
    table = {}
    for key, entry in st.index.items():
        out = entry.get("out")
        if out and out.get("k") == "t":
            table[key] = oracle.decode(out, st.arrays).tolist()
    src = (ROOT / "solutions" / "ex1_values.py").read_text() + MEMORISER.format(table=table)
    folder = make_submission(tmp_path / "memoriser", {"ex1_values.py": src})
    monkeypatch.setenv("RLKIT_NO_SUITE_SERVER", "1")

    def returns_points(report):
        return sum(t["score"] for e in report["exercises"] for t in e["tests"]
                   if t["function"] == "discounted_returns")

    published = grade(folder, ["ex1_values"], jobs=1)
    official = grade(folder, ["ex1_values"], jobs=1, course_seed="spring-2027-" + hashlib.sha1(b"x").hexdigest())
    assert published["inputs"] == "published" and official["inputs"].startswith("course:")
    assert "spring-2027" not in json.dumps(official)  # the seed itself never reaches a report
    assert returns_points(published) == 5
    assert returns_points(official) == 0
    honest = grade(ROOT / "solutions", ["ex1_values"], jobs=1, course_seed="spring-2027")
    assert honest["total"] == honest["max_total"]


@pytest.mark.parametrize("oracle_mode", ["live", "record"])
def test_known_mistakes_are_computed_for_a_wrong_answer_only_except_while_recording(monkeypatch, oracle_mode):
    """A correct answer never needs a mistake's value, so grading it computes none; while answers are
    recorded for the student kit every one is computed at once, or a later wrong answer would find
    its variant missing from the recording."""
    from autograder import checks
    from autograder.harness import EachRead, named

    monkeypatch.setenv("RLKIT_ORACLE", oracle_mode)
    calls = []

    def variants():
        calls.append(1)
        return {"off_by_one": np.array([2.0])}

    mistakes = named({"off_by_one": "you are off by one"}, variants)
    read = EachRead(mistakes, lambda v: v * 10)
    checks._all_mistakes(read)  # what every check does with its mistakes before comparing
    assert calls == ([1] if oracle_mode == "record" else [])
    assert [(k, m, f()) for k, m, f in read] == [("off_by_one", "you are off by one", np.array([20.0]))]
    assert [k for k, _, _ in mistakes] == ["off_by_one"]  # iterated again: the same values, computed once
    assert calls == [1]
