"""Attacks on the instructor's grade, one class per test (issue 9's findings, written from scratch).

Each test plays a hostile submission that has read the grader's source, and
checks what the kernel-backed design promises:

1. no reference code is anywhere a child can read, so none reaches feedback;
2. nothing a child writes is followed by trusted code (planted links);
3. in a batch, one student's sandbox cannot read or change another's;
4. switching the Python audit hook off gains nothing (the kernel still holds);
5. the grader's environment never reaches a child or a report;
6. given code (the training loops) comes from the kit, not the submission;
7. caps hold before parsing (frames, result trees, network configs, uploads);
8. feedback is plain text.

They run in standard and strict mode where both apply.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import pytest

from autograder.child import confine, wire
from autograder.exercises import BY_NAME

from conftest import ROOT, assert_no_answers, feedback_of, grade, make_submission, scores_by_function

MODES = ["standard", "strict"]


def stub(module: str) -> str:
    return (ROOT / "assignments" / f"{module}.py").read_text()


def ref(module: str) -> str:
    return (ROOT / "solutions" / f"{module}.py").read_text()


def stubs(folder: Path, **replace: str) -> Path:
    """A submission of every stub, with some modules replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in BY_NAME:
        (folder / f"{name}.py").write_text(replace.get(name, stub(name)))
    return folder


def world_writable_dir() -> Path:
    """A folder any user may write (so a failed defence would show, even as the sandbox's own user)."""
    d = Path(tempfile.mkdtemp(prefix="rlkit-attack-target-"))
    os.chmod(d, 0o777)
    return d


# Python-level first step of several attacks: neutralise the audit hook (its closure cells).
HOOK_OFF_PRELUDE = '''
import gc as _gc
import os as _os

_DISABLED = 0
for _o in _gc.get_objects():
    if type(_o).__name__ == "function" and _o.__name__ == "hook" and _o.__closure__:
        for _cell in _o.__closure__:
            try:
                value = _cell.cell_contents
            except ValueError:
                continue
            if callable(value):
                _cell.cell_contents = lambda *a, **k: None
            elif isinstance(value, (tuple, set, frozenset)):
                _cell.cell_contents = type(value)()
        _DISABLED += 1
'''


# ---------------------------------------------------------------- 1. no reference in any sandbox
LOOT = '''
import os as _os


def _loot():
    """Every solution region of every .py file this process can read near its sandbox."""
    found, seen = [], {_os.path.realpath(__file__)}  # (not its own file)
    begin, end_marker = "### BEGIN " + "SOLUTION", "### END " + "SOLUTION"
    here = _os.getcwd()
    roots = [here, _os.path.dirname(here), _os.path.dirname(_os.path.abspath(__file__))]
    for root in roots:
        for dirpath, dirs, files in _os.walk(root):
            for name in files:
                path = _os.path.realpath(_os.path.join(dirpath, name))
                if path in seen or name.startswith(__name__.rsplit(".", 1)[-1] + "."):
                    continue  # its own source and bytecode hold the markers it searches for
                seen.add(path)
                try:
                    text = open(path, errors="replace").read()
                except Exception:
                    continue
                start = text.find(begin)
                while start >= 0:
                    end = text.find(end_marker, start)
                    found.append(text[start + 19:end])
                    start = text.find(begin, end) if end >= 0 else -1
    return "".join(found)


_LOOT = _loot()


def _leak(part):
    raise RuntimeError(_LOOT[part * 250:(part + 1) * 250] or "nothing found")
'''


@pytest.mark.parametrize("mode", MODES)
def test_no_reference_code_reaches_a_sandbox_or_the_feedback(tmp_path, mode):
    """ex5's sandbox once held the reference ex1..ex4 beside the student's file; its feedback carried them."""
    ex5 = stub("ex5_rlhf") + LOOT + "".join(
        f"\n\ndef {fn}(*args, **kwargs):\n    _leak({i})\n" for i, fn in enumerate(BY_NAME["ex5_rlhf"].functions))
    folder = stubs(tmp_path / "sub", ex5_rlhf=ex5)
    report = grade(folder, ["ex5_rlhf"], sandbox=mode, skip_learning=True)
    assert_no_answers(report)
    fb = feedback_of(report, "preference_loss")
    assert fb and all("nothing found" in f for f in fb), fb  # the attack ran, and found nothing


# ---------------------------------------------------------------- 2. planted links are never followed
PLANT = '''
import os as _os

_TARGET = {target!r}
for _d in (".", "..", "../log", "log", "../kit", "../kit/modules", "../work", "submission", "mpl"):
    for _name in [f"{{i}}.txt" for i in range(1, 120)] + ["zygote.log", "config.json", "pytest.log"]:
        try:
            _os.symlink("../" * 14 + _TARGET.lstrip("/"), _os.path.join(_d, _name))
        except Exception:
            pass
print("written through a planted link")
'''


@pytest.mark.parametrize("mode", MODES)
def test_links_planted_by_a_child_are_never_followed(tmp_path, mode):
    """Children once wrote their log through links a previous child planted, outside the sandbox."""
    target = world_writable_dir() / "victim.txt"
    try:
        src = ref("ex1_values") + HOOK_OFF_PRELUDE + PLANT.format(target=str(target))
        folder = make_submission(tmp_path / "sub", {"ex1_values.py": src})
        report = grade(folder, ["ex1_values"], sandbox=mode)
        assert not target.exists(), f"a child wrote outside its sandbox: {target.read_text()[:200]!r}"
        assert report["total"] == report["max_total"]  # the planting itself costs nothing
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)


# ---------------------------------------------------------------- 3. sandboxes are isolated from each other
SNOOP = '''
import glob as _glob
import os as _os
import time as _time

_MARK = "BOB-" + "SECRET-" + {mark!r}


def _snoop():
    """Look for another student's files for a few seconds: /proc, /tmp, links; also try to write there."""
    found = []
    start_file = "snoop-start.txt"
    try:
        t0 = float(open(start_file).read())
    except Exception:
        t0 = _time.time()
        try:
            open(start_file, "w").write(str(t0))
        except Exception:
            pass
    while _time.time() < t0 + 8 and not found:
        paths = set()
        for _pattern in ("/tmp/rlkit-sandbox-*/work/submission/*.py", "../../*/work/submission/*.py"):
            try:
                paths |= set(_glob.glob(_pattern))
            except Exception:
                pass
        try:
            entries = _os.listdir("/proc")
        except Exception:
            entries = []
        for entry in entries:
            try:
                cmd = open(f"/proc/{{entry}}/cmdline", "rb").read().decode(errors="replace")
            except Exception:
                continue
            for part in cmd.split("\\0"):
                if "rlkit-sandbox-" in part:
                    try:
                        paths |= set(_glob.glob(part.split("/kit/")[0] + "/work/submission/*.py"))
                    except Exception:
                        pass
            try:
                paths |= {{_os.path.join(f"/proc/{{entry}}/cwd/submission", n)
                           for n in _os.listdir(f"/proc/{{entry}}/cwd/submission")}}
            except Exception:
                pass
        own = _os.path.dirname(_os.getcwd()) + "/"
        for path in paths:
            if _os.path.realpath(path).startswith(own) or path.startswith(own):
                continue  # its own sandbox
            try:
                text = open(path).read()
            except Exception:
                continue
            if _MARK in text:
                found.append(text[text.find(_MARK):][:60])
            try:
                open(path, "a").write("\\nraise SystemExit('sabotaged by a neighbour')\\n")
            except Exception:
                pass
        _time.sleep(0.2)
    return found


_FOUND = _snoop()
'''


def test_batch_sandboxes_cannot_read_or_change_each_other(tmp_path):
    """Two students in one strict `make grade-all`: the attacker finds and reads nothing of the victim's."""
    mark = secrets.token_hex(6)
    root = tmp_path / "batch"
    attacker = ref("ex1_values") + SNOOP.format(mark=mark) + '''

_reference_returns = discounted_returns


def discounted_returns(rewards, dones, gamma):
    if _FOUND:
        raise RuntimeError("found: " + " | ".join(_FOUND))
    return _reference_returns(rewards, dones, gamma)
'''
    victim = ref("ex1_values") + f"\n# BOB-SECRET-{mark}\n"
    make_submission(root / "alice", {"ex1_values.py": attacker}, from_solutions=False)
    make_submission(root / "bob", {"ex1_values.py": victim}, from_solutions=False)
    out = tmp_path / "grades"
    proc = subprocess.run([sys.executable, "-m", "autograder.batch", str(root), "--output", str(out),
                           "--jobs", "2", "--exercise", "ex1_values", "--sandbox", "strict", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    alice = json.loads((out / "alice.json").read_text())
    bob = json.loads((out / "bob.json").read_text())
    assert mark not in json.dumps(alice), "the attacker's report holds the victim's file"
    assert bob["total"] == bob["max_total"] > 0, "the victim lost points"
    assert alice["total"] == alice["max_total"]
    assert_no_answers(alice)
    assert "user of its own" in " ".join(alice["protections"])


# ---------------------------------------------------------------- 4. the audit hook is not a guarantee
HOOK_OFF = HOOK_OFF_PRELUDE + '''

def _grab():
    """With the hook off: read the hidden suites and any reference copy, with open() and with ctypes."""
    got = []
    candidates = [{kit!r} + "/autograder/suites/test_ex2_reinforce.py", {kit!r} + "/solutions/ex1_values.py"]
    for here in (_os.getcwd(), _os.path.dirname(_os.getcwd())):
        try:
            for dirpath, dirs, files in _os.walk(here):
                candidates += [_os.path.join(dirpath, f) for f in files if f.endswith((".py", ".pyc"))]
        except Exception:
            pass
    for path in candidates:
        if _os.path.basename(path).startswith(__name__.rsplit(".", 1)[-1] + "."):
            continue  # its own source and bytecode
        try:
            text = open(path).read()
        except Exception:
            try:
                import ctypes

                libc = ctypes.CDLL(None)
                fd = libc.open(path.encode(), 0)
                buf = ctypes.create_string_buffer(1 << 16)
                n = libc.read(fd, buf, 1 << 16)
                text = buf.raw[:max(n, 0)].decode(errors="replace")
            except Exception:
                continue
        for marker in ("### BEGIN " + "SOLUTION", "@pytest.mark." + "points"):
            i = text.find(marker)
            if i >= 0:
                got.append(text[i:i + 250])
    return got


_GOT = _grab()


def sample_action(logits, generator=None):
    raise RuntimeError(f"hook disabled {{_DISABLED}}x; " + (" || ".join(_GOT) or "nothing readable"))
'''


@pytest.mark.parametrize("mode", MODES)
def test_switching_the_audit_hook_off_reads_nothing(tmp_path, mode):
    """With the Python audit hook neutralised from plain Python, the kernel still hides every answer."""
    ex2 = stub("ex2_reinforce") + HOOK_OFF.format(kit=str(ROOT))
    folder = stubs(tmp_path / "sub", ex2_reinforce=ex2)
    report = grade(folder, ["ex2_reinforce"], sandbox=mode, skip_learning=True)
    assert_no_answers(report)
    fb = feedback_of(report, "sample_action")
    assert fb and all("hook disabled 1x" in f and "nothing readable" in f for f in fb), fb


def test_strict_mode_refuses_a_kernel_without_landlock(monkeypatch, tmp_path):
    """Strict grading needs the kernel's confinement; without it: a clear refusal, or an explicit,
    reported override."""
    from autograder import runner
    from autograder.sandbox import GraderError

    monkeypatch.setattr(confine, "probe_confinement", lambda *a, **k: {"landlock": 0, "seccomp": True})
    with pytest.raises(GraderError, match="Landlock.*refusing to grade.*--allow-weak-sandbox"):
        runner.grade(ROOT / "solutions", ["ex1_values"], sandbox="strict")
    proc = subprocess.run([sys.executable, "-m", "autograder.batch", str(tmp_path), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode in (0, 2)  # (this kernel may have Landlock: then the batch of nothing just runs)


# ---------------------------------------------------------------- 5. the grader's environment stays out
ENV_SNOOP = '''
import os as _os


def _env_snoop():
    found = [f"{{k}}={{v}}" for k, v in _os.environ.items() if "RLKIT_TEST_SECRET" in k]
    for entry in _os.listdir("/proc"):
        for name in ("environ", "cmdline"):
            try:
                data = open(f"/proc/{{entry}}/{{name}}", "rb").read().decode(errors="replace")
            except Exception:
                continue
            i = data.find("RLKIT_TEST_SECRET")
            if i >= 0:
                found.append(data[i:i + 80])
    for path in ("/proc/1/environ", f"/proc/{{_os.getppid()}}/environ"):
        try:
            data = open(path, "rb").read().decode(errors="replace")
        except Exception:
            continue
        if "RLKIT_TEST_SECRET" in data:
            found.append(data[data.find("RLKIT_TEST_SECRET"):][:80])
    return found


_ENV = _env_snoop()
print("env:", _ENV)
_reference_action_values = action_values


def action_values(P, R, V, gamma):
    raise RuntimeError("env: " + (" | ".join(_ENV) or "nothing"))
'''


@pytest.mark.parametrize("mode", MODES)
def test_the_graders_environment_never_reaches_a_child_or_a_report(tmp_path, monkeypatch, mode):
    token = secrets.token_hex(8)
    monkeypatch.setenv("RLKIT_TEST_SECRET", token)
    monkeypatch.setenv("RLKIT_NO_SUITE_SERVER", "1")  # a fresh pytest per suite: it sees the variable
    folder = make_submission(tmp_path / "sub", {"ex1_values.py": ref("ex1_values") + HOOK_OFF_PRELUDE + ENV_SNOOP})
    report = grade(folder, ["ex1_values"], sandbox=mode)
    text = json.dumps(report)
    assert token not in text
    fb = feedback_of(report, "action_values")
    assert fb and all("env: nothing" in f for f in fb), fb


# ---------------------------------------------------------------- 6. given code comes from the kit
FAKE_TRAINING = '''

import torch as _torch
from common.networks import ActorCritic as _AC, PolicyNet as _PN, ValueNet as _VN
from common.rollout import TrainResult as _TR


def _controller(net):
    """A hand-written CartPole controller (no learning): push towards where the pole falls."""
    with _torch.no_grad():
        layers = [m for m in net.modules() if isinstance(m, _torch.nn.Linear)]
        for layer in layers:
            layer.weight.zero_()
            layer.bias.zero_()
        layers[0].weight[0] = _torch.tensor([0.0, 0.5, 10.0, 2.0])
        for layer in layers[1:-1]:
            layer.weight[0, 0] = 1.0
        layers[-1].weight[0, 0], layers[-1].weight[1, 0] = -10.0, 10.0
    return net


def _fake(*args, **kwargs):
    policy = _controller(_PN(4, 2))
    return _TR(episode_returns=[500.0] * int(kwargs.get("episodes", 300)), policy=policy, value=_VN(4), log={})


def _fake_ppo(*args, **kwargs):
    agent = _AC(4, 2)
    _controller(agent.actor)
    return _TR(episode_returns=[500.0] * 50, policy=agent, value=None,
               log={"steps": [i * 512 for i in range(1, 51)], "mean_return": [500.0] * 50})


train_reinforce = train_actor_critic = _fake
train_ppo = _fake_ppo

# and try to make the kit's own copy of the given code run this instead
for _dirpath, _dirs, _files in __import__("os").walk(".."):
    for _f in _files:
        if _f.endswith(".py") and ("given" in _f or _f == "rollout.py"):
            try:
                open(__import__("os").path.join(_dirpath, _f), "a").write("\\ntrain_reinforce = None\\n")
            except Exception:
                pass
'''


@pytest.mark.parametrize("mode", MODES)
def test_replacing_the_given_training_loop_earns_nothing(tmp_path, mode):
    """Stubs plus a hand-written controller in place of train_*: the kit trains with its own loop."""
    folder = stubs(tmp_path / "sub", **{m: stub(m) + FAKE_TRAINING for m in ("ex2_reinforce", "ex3_baseline",
                                                                                 "ex4_ppo")})
    report = grade(folder, ["ex2_reinforce", "ex3_baseline", "ex4_ppo"], sandbox=mode)
    scores = scores_by_function(report)
    for ex, fn in (("ex2_reinforce", "train_reinforce"), ("ex3_baseline", "train_actor_critic"),
                   ("ex4_ppo", "train_ppo")):
        assert scores[(ex, fn)][0] == 0, (fn, feedback_of(report, fn))
        assert any("not implemented" in f or "NotImplementedError" in f for f in feedback_of(report, fn))
    assert report["total"] == 0


def test_the_kits_training_loop_still_trains_the_students_functions(tmp_path):
    """The reference functions, trained by the kit's loop (not the file's own train_*), pass."""
    src = ref("ex2_reinforce") + "\n\ndef train_reinforce(*args, **kwargs):\n    raise SystemExit('not mine')\n"
    folder = make_submission(tmp_path / "sub", {"ex2_reinforce.py": src})
    report = grade(folder, ["ex2_reinforce"])
    assert scores_by_function(report)[("ex2_reinforce", "train_reinforce")] == (5, 5)


# ---------------------------------------------------------------- 7. caps before parsing
def test_an_oversized_frame_header_is_refused_before_json_parsing(monkeypatch):
    header = {"event": "case", "ok": True, "index": 0,
              "output": {"kind": "sequence", "items": [{}] * 3_000_000}}
    blob = wire.pack(header)[wire.HDR.size:]
    assert len(blob) > 8 << 20

    def never(*a, **k):
        raise AssertionError("the header was parsed")

    monkeypatch.setattr(wire.json, "loads", never)  # a parsed tree of millions of dicts costs gigabytes
    with pytest.raises(ValueError, match="too large"):
        wire.unpack(blob)


def test_a_result_tree_with_too_many_nodes_is_garbage():
    from autograder.sandbox import MAX_NODES, _frame_ok

    items = [{"kind": "none"}] * (MAX_NODES + 1)
    assert not _frame_ok({"event": "case", "ok": True, "index": 0, "output": {"kind": "sequence", "items": items}}, {})
    small = [{"kind": "none"}] * 100
    assert _frame_ok({"event": "case", "ok": True, "index": 0, "output": {"kind": "sequence", "items": small}}, {})


def test_a_returned_network_config_is_checked_before_it_is_built(monkeypatch):
    from autograder.checks import CheckFailed
    from autograder.harness import rebuild_network
    from autograder.client import Leaf
    from common import networks

    built = []
    real_init = networks.PolicyNet.__init__

    def counting_init(self, *args, **kwargs):
        built.append(kwargs)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(networks.PolicyNet, "__init__", counting_init)
    state = {k: v.numpy() for k, v in networks.PolicyNet(4, 2, hidden=(8,)).state_dict().items()}
    built.clear()
    huge = Leaf("network", {"class": "PolicyNet", "state": state,
                            "config": {"obs_dim": 4, "n_actions": 2, "hidden": [4096] * 4, "activation": "tanh"}})
    with pytest.raises(CheckFailed, match="parameters"):
        rebuild_network(huge, "train_reinforce")
    deep = Leaf("network", {"class": "PolicyNet", "state": state,
                            "config": {"obs_dim": 4, "n_actions": 2, "hidden": [8] * 100, "activation": "tanh"}})
    with pytest.raises(CheckFailed, match="layer widths"):
        rebuild_network(deep, "train_reinforce")
    assert built == []
    fine = Leaf("network", {"class": "PolicyNet", "state": state,
                            "config": {"obs_dim": 4, "n_actions": 2, "hidden": [8], "activation": "tanh"}})
    assert rebuild_network(fine, "train_reinforce") is not None


@pytest.mark.parametrize("what", ["many files", "large file"])
def test_an_oversized_upload_is_refused_with_a_clear_message(tmp_path, what):
    folder = make_submission(tmp_path / "sub")
    if what == "many files":
        for i in range(3000):
            (folder / f"helper_{i}.py").write_text("x = 1\n")
        phrase = ".py files"
    else:
        (folder / "blob.py").write_text("# " + "x" * (3 << 20) + "\n")
        phrase = "MB"
    report = grade(folder, ["ex1_values", "ex2_reinforce"], skip_learning=True)
    assert report["total"] == 0
    for ex in report["exercises"]:
        for t in ex["tests"]:  # the driver's sandbox (reinforce_update) applies the same rule
            assert "SubmissionRejected" in t["feedback"] and phrase in t["feedback"], t


# ---------------------------------------------------------------- 8. plain-text feedback
def test_feedback_is_plain_text(tmp_path):
    src = ref("ex1_values") + (
        "\n\ndef discounted_returns(rewards, dones, gamma):\n"
        "    raise RuntimeError('\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mRED\\x1b[0m\\r\\n' + 'y' * 5000)\n")
    folder = make_submission(tmp_path / "sub", {"ex1_values.py": src})
    report = grade(folder, ["ex1_values"], skip_learning=True)
    fb = feedback_of(report, "discounted_returns")
    assert fb and all("RED" in f for f in fb), fb
    for f in fb:
        assert not any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 for c in f), repr(f)
        assert len(f) < 1000


def test_kit_part_of_a_sandbox_is_read_only_and_private(tmp_path):
    """The folder layout the guarantees rest on (strict mode, as root: a user of its own)."""
    from autograder.client import Submission

    if os.geteuid() != 0:
        pytest.skip("strict mode's users need root")
    import torch

    folder = stubs(tmp_path / "sub")
    sub = Submission(folder, strict=True, module="ex2_reinforce")
    try:
        res = sub.call("ex1_values", "discounted_returns", torch.ones(3), torch.zeros(3), 0.5)
        assert res.not_implemented, res.error
        work = os.stat(sub.sandbox.work_dir)
        kit = os.stat(sub.sandbox.kit_dir)
        assert work.st_uid >= 1_000_000 and stat.S_IMODE(work.st_mode) == 0o700
        assert kit.st_uid == 0 and not stat.S_IMODE(kit.st_mode) & 0o022
        assert not list(Path(sub.sandbox.dir).rglob("*solution*"))
        assert "### BEGIN SOLUTION" not in "".join(p.read_text() for p in Path(sub.sandbox.dir).rglob("*.py"))
    finally:
        sub.close()


# ---------------------------------------------------------------- found by the red team
PLANTED_GIVEN = '''

import sys as _sys
import types as _types


def _fake_train(*args, seed=0, **kwargs):
    import torch as _torch
    from common.networks import PolicyNet as _PN
    from common.rollout import TrainResult as _TR

    pol = _PN(4, 2, hidden=())
    with _torch.no_grad():
        w, b = pol.net[0].weight, pol.net[0].bias
        w.zero_()
        b.zero_()
        w[1, 2] = w[1, 3] = 10.0
        b[0] = 1e-4 * (seed % 97)
    return _TR(episode_returns=[float(seed)] * 5, policy=pol)


for _name in ("submission.__given_ex2_reinforce",):
    _m = _types.ModuleType(_name)
    _m.train_reinforce = _fake_train
    _sys.modules[_name] = _m
'''

FORGED_FRAMES = '''

def _forge():
    """Answer the kit's train_reinforce request with hand-made result frames, then leave."""
    import os
    import sys

    import torch
    from common.networks import PolicyNet
    from common.rollout import TrainResult

    w = sys.modules["__main__"]
    f = sys._getframe()
    while f is not None and not ("request" in f.f_locals and "out_fd" in f.f_locals):
        f = f.f_back
    if f is None or f.f_locals["request"].get("function") != "train_reinforce":
        return
    req, fd = f.f_locals["request"], f.f_locals["out_fd"]
    for i, case in enumerate(req["cases"]):
        seed = int(case.get("kwargs", {}).get("seed", 0))
        pol = PolicyNet(4, 2, hidden=())
        with torch.no_grad():
            pol.net[0].weight.zero_()
            pol.net[0].bias.zero_()
            pol.net[0].weight[1, 2] = pol.net[0].weight[1, 3] = 10.0
            pol.net[0].bias[0] = 1e-4 * (seed % 97)
        flat = w.Flattener()
        out = flat.flatten(TrainResult(episode_returns=[float(seed)] * 5, policy=pol))
        w.write_all(fd, w.pack({"event": "case", "index": i, "ok": True, "seconds": 0.1, "output": out,
                                "inputs_after": {}}, flat.arrays))
    w.write_all(fd, w.pack({"event": "done"}))
    os._exit(0)


_forge()
'''


PATCHED_ADAM = '''

import common.adam as _kit_adam


def _controller_step(self, closure=None):
    """Instead of a step: the textbook CartPole controller, push towards the side the pole falls."""
    import torch as _torch

    ps = self.param_groups[0]["params"]
    if len(ps) == 4 and tuple(ps[0].shape) == (32, 4):
        with _torch.no_grad():
            for p in ps:
                p.zero_()
            ps[0][0, 2] = ps[0][0, 3] = 1.0
            ps[2][1, 0] = 10.0


_kit_adam.Adam.step = _controller_step


def reinforce_update(optimizer, episode, gamma, normalize_returns=True):
    optimizer.zero_grad()
    optimizer.step()
    return 0.0
'''


@pytest.mark.parametrize("attack", ["planted given module", "forged result frames"])
def test_a_faked_training_result_earns_nothing_without_the_learning_functions(tmp_path, attack):
    """Code in the child can fake what the kit's loop returns; the training points also need the
    functions it trains with to pass their own checks."""
    code = PLANTED_GIVEN if attack == "planted given module" else FORGED_FRAMES
    folder = stubs(tmp_path / "sub", ex2_reinforce=stub("ex2_reinforce") + code)
    report = grade(folder, ["ex2_reinforce"], sandbox="strict")
    assert scores_by_function(report)[("ex2_reinforce", "train_reinforce")][0] == 0
    assert report["total"] == 0


def test_a_patched_kit_adam_earns_nothing_without_the_learning_functions(tmp_path):
    """Red team of common.adam: the kit's loop steps the kit's Adam inside the child, so a
    submission can replace its step with one that writes a hand-made controller into the policy,
    and skip the learning in reinforce_update. The learning check alone is fooled (the feedback
    names the gate, not the evaluation); the points are not, because reinforce_update fails its
    own checks, which run it with the suite's plain SGD."""
    folder = stubs(tmp_path / "sub", ex2_reinforce=ref("ex2_reinforce") + PATCHED_ADAM)
    report = grade(folder, ["ex2_reinforce"], sandbox="strict")
    scores = scores_by_function(report)
    assert scores[("ex2_reinforce", "reinforce_update")][0] == 0
    assert scores[("ex2_reinforce", "train_reinforce")][0] == 0
    assert "reinforce_update() fail" in " ".join(feedback_of(report, "train_reinforce"))


def test_the_training_gate_keeps_honest_points():
    from autograder.plugin import gate_training

    def row(fn, ok):
        return {"function": fn, "passed": ok, "score": 1.0 if ok else 0.0, "feedback": ""}

    ok = [row("sample_action", True), row("collect_episode", True), row("reinforce_update", True),
          row("train_reinforce", True)]
    gate_training(ok, "ex2_reinforce")
    assert ok[-1]["passed"] and ok[-1]["score"] == 1.0
    bad = [row("sample_action", True), row("collect_episode", True), row("reinforce_update", False),
           row("train_reinforce", True)]
    gate_training(bad, "ex2_reinforce")
    assert not bad[-1]["passed"] and bad[-1]["score"] == 0 and "reinforce_update() fail" in bad[-1]["feedback"]



def test_the_training_gate_reaches_earlier_exercises_graded_in_the_same_run():
    """train_ppo trains with ex3's compute_gae: a red team's ppo_policy_loss passed its own checks and
    faked the trained policy while compute_gae failed; the PPO training points now need it too."""
    from autograder.runner import gate_training_across_exercises

    def row(fn, ok, learning=False):
        return {"function": fn, "passed": ok, "score": 2.0 if ok else 0.0, "feedback": "", "learning": learning}

    def report(gae_ok):
        return {"exercises": [
            {"name": "ex3_baseline", "score": 0, "tests": [row("compute_gae", gae_ok), row("value_loss", True)]},
            {"name": "ex4_ppo", "score": 0, "tests": [row("ppo_policy_loss", True), row("train_ppo", True, True),
                                                       row("train_ppo", True)]}]}

    honest = report(True)
    gate_training_across_exercises(honest)
    assert [t["passed"] for t in honest["exercises"][1]["tests"]] == [True, True, True]
    assert honest["exercises"][1]["score"] == 6.0
    faked = report(False)
    gate_training_across_exercises(faked)
    ppo = faked["exercises"][1]
    assert [t["passed"] for t in ppo["tests"]] == [True, False, False] and ppo["score"] == 2.0
    assert "compute_gae() of ex3_baseline fail" in ppo["tests"][1]["feedback"]
    alone = {"exercises": [report(False)["exercises"][1]]}  # ex3 not graded in this run: nothing to go on
    gate_training_across_exercises(alone)
    assert all(t["passed"] for t in alone["exercises"][0]["tests"])


def test_the_ex5_gate_counts_only_the_learning_test_of_rlhf_rewards():
    from autograder.plugin import gate_training

    def row(fn, ok, learning=False):
        return {"function": fn, "passed": ok, "score": 1.0 if ok else 0.0, "feedback": "", "learning": learning}

    rows = [row("rlhf_rewards", True), row("rlhf_rewards", True, learning=True), row("token_advantages", False)]
    gate_training(rows, "ex5_rlhf")
    assert rows[0]["passed"] and rows[0]["score"] == 1.0  # its own check stands
    assert not rows[1]["passed"] and "token_advantages() fail" in rows[1]["feedback"]  # the learning test does not


RLHF_NO_PENALTY = """
_cheat = {"beta": 0.0, "calls": 0}
_honest_rewards = rlhf_rewards


def rlhf_rewards(scores, log_probs, ref_log_probs, mask, beta):
    _cheat["beta"] = beta
    _cheat["calls"] += beta > 0
    return _honest_rewards(scores, log_probs, ref_log_probs, mask, 0.0)  # the KL penalty is never applied
"""

PPO_FREEZES_THE_PENALISED_RUN = """
_honest_loss = ppo_policy_loss


def ppo_policy_loss(new_log_probs, old_log_probs, advantages, clip_eps=0.2):
    import sys
    state = next((vars(m)["_cheat"] for m in list(sys.modules.values())
                  if isinstance(getattr(m, "__dict__", None), dict) and "_cheat" in vars(m)), None)
    if state is not None and state["beta"] > 0 and state["calls"] > 5:
        return (new_log_probs * 0).sum()  # stop learning once the penalised run is under way
    return _honest_loss(new_log_probs, old_log_probs, advantages, clip_eps)
"""


def test_functions_that_share_a_session_cannot_fake_the_toy_rlhf(tmp_path):
    """Red team: one session child answers every call of ex5's two RLHF runs, so module state lets
    ppo_policy_loss tell the penalised run from the free one (rlhf_rewards records beta, then drops
    the KL term) and freeze it: the KL stays small without any penalty. The learning test's points
    need rlhf_rewards and token_advantages to pass their own checks, which this one does not."""
    folder = make_submission(tmp_path / "sub", {
        "ex5_rlhf.py": (ROOT / "solutions" / "ex5_rlhf.py").read_text() + RLHF_NO_PENALTY,
        "ex4_ppo.py": (ROOT / "solutions" / "ex4_ppo.py").read_text() + PPO_FREEZES_THE_PENALISED_RUN})
    report = grade(folder, ["ex5_rlhf"])
    (ex,) = report["exercises"]
    learning = [t for t in ex["tests"] if t["learning"]]
    assert learning and all(not t["passed"] and t["score"] == 0 for t in learning), learning
    assert "rlhf_rewards() fail" in learning[0]["feedback"]


DEEP_TREE = '''
import os as _os

_d = _os.open(".", _os.O_RDONLY)
for _i in range(3000):
    try:
        _os.mkdir("d", dir_fd=_d)
    except FileExistsError:
        pass
    _n = _os.open("d", _os.O_RDONLY, dir_fd=_d)
    _os.close(_d)
    _d = _n
_os.close(_d)
_reference_action_values = action_values


def action_values(P, R, V, gamma):
    raise RuntimeError("sandbox at " + _os.path.dirname(_os.getcwd()))
'''


def test_a_deep_tree_left_by_a_child_is_removed(tmp_path):
    """shutil.rmtree is recursive: a 3,000-deep tree once left the sandbox (and its uid lease) behind."""
    import re

    folder = make_submission(tmp_path / "sub", {"ex1_values.py": ref("ex1_values") + DEEP_TREE})
    report = grade(folder, ["ex1_values"], sandbox="strict", skip_learning=True)
    fb = feedback_of(report, "action_values")
    dirs = {m.group(1) for f in fb for m in [re.search(r"sandbox at (/\S+?)(?:\s|\(|$)", f)] if m}
    assert dirs, fb
    for d in dirs:
        assert not os.path.exists(d), f"{d} was left behind"


METADATA = '''
import os as _os

_TARGET = {target!r}
_done = []
for _name, _call in (("chmod", lambda: _os.chmod(_TARGET, 0o4777)), ("utime", lambda: _os.utime(_TARGET, (0, 0))),
                     ("chmod own", lambda: _os.chmod("submission", 0o777)),
                     ("mknod", lambda: _os.mknod("dev", 0o600 | 0o060000, _os.makedev(8, 0)))):
    try:
        _call()
        _done.append(_name)
    except Exception:
        pass
_reference_action_values = action_values


def action_values(P, R, V, gamma):
    raise RuntimeError("did: " + (", ".join(_done) or "nothing"))
'''


@pytest.mark.parametrize("mode", MODES)
def test_file_metadata_and_device_nodes_are_off_limits(tmp_path, mode):
    """Landlock does not cover chmod, utime or mknod: seccomp refuses them, and a root grader's
    child has no capabilities left."""
    target_dir = world_writable_dir()
    target = target_dir / "victim.txt"
    target.write_text("x")
    os.chmod(target, 0o600)
    before = os.stat(target)
    try:
        src = ref("ex1_values") + HOOK_OFF_PRELUDE + METADATA.format(target=str(target))
        folder = make_submission(tmp_path / "sub", {"ex1_values.py": src})
        report = grade(folder, ["ex1_values"], sandbox=mode, skip_learning=True)
        after = os.stat(target)
        assert (after.st_mode, after.st_mtime) == (before.st_mode, before.st_mtime)
        fb = feedback_of(report, "action_values")
        assert fb and all("did: nothing" in f for f in fb), fb
    finally:
        shutil.rmtree(target_dir, ignore_errors=True)


def test_a_frame_of_many_tiny_arrays_is_refused_before_loading(monkeypatch):
    arrays = {f"a{i}": np.zeros((), np.uint8) for i in range(20_000)}
    blob = wire.pack({"event": "case", "index": 0, "ok": True, "output": {"kind": "none"}}, arrays)

    def never(*a, **k):
        raise AssertionError("the members were loaded")

    monkeypatch.setattr(np, "frombuffer", never)  # each member costs time
    with pytest.raises(ValueError, match="too many arrays"):
        wire.unpack(blob[wire.HDR.size:])


def _forged(meta: bytes, tail: bytes = b"", magic: bytes = wire.MAGIC, length: int | None = None) -> bytes:
    """A frame payload made by hand: the magic, the JSON part's length, the JSON part, the array bytes."""
    return magic + (len(meta) if length is None else length).to_bytes(4, "big") + meta + tail


def _table(*entries) -> bytes:
    return json.dumps({"header": {"event": "done"}, "arrays": [list(e) for e in entries]}).encode()


@pytest.mark.parametrize("payload", [
    pytest.param(_forged(_table(["a", "|O", [1]]), bytes(8)), id="object dtype (reads pointers)"),
    pytest.param(_forged(_table(["a", "|O8", [1]]), bytes(8)), id="object dtype, with a size"),
    pytest.param(_forged(_table(["a", "<U1", [1]]), bytes(4)), id="text dtype"),
    pytest.param(_forged(_table(["a", "<c8", [1]]), bytes(8)), id="complex dtype"),
    pytest.param(_forged(_table(["a", "|f8", [1]]), bytes(8)), id="dtype not in numpy's spelling"),
    pytest.param(_forged(_table(["a", "<f4", [4]]), bytes(12)), id="array longer than the frame"),
    pytest.param(_forged(_table(["a", "<f4", [2]]), bytes(12)), id="bytes no array accounts for"),
    pytest.param(_forged(_table(["a", "<f4", [-1]]), bytes(4)), id="negative dimension"),
    pytest.param(_forged(_table(["a", "<f4", [True]]), bytes(4)), id="boolean dimension"),
    pytest.param(_forged(_table(["a", "<f4", [0, 2 ** 70]])), id="empty array of absurd dimensions"),
    pytest.param(_forged(_table(["a", "<f4", [1] * 40]), bytes(4)), id="too many dimensions"),
    pytest.param(_forged(_table(["a", "<f4", [1]], ["a", "<f4", [1]]), bytes(8)), id="one name twice"),
    pytest.param(_forged(_table(["a", "<f4"]), bytes(4)), id="short table entry"),
    pytest.param(_forged(b'{"header": [], "arrays": []}'), id="header not a mapping"),
    pytest.param(_forged(b'{"header": {}, "arrays": [], '), id="JSON cut short"),
    pytest.param(_forged(b"[" * 100_000 + b"]" * 100_000), id="JSON nested too deep"),
    pytest.param(_forged(_table(), length=1 << 20), id="JSON length beyond the frame"),
    pytest.param(_forged(_table(), magic=b"PK\x03\x04"), id="not this format (an old npz frame)"),
    pytest.param(b"RLK", id="shorter than its own head"),
])
def test_a_forged_frame_is_refused_whole(payload):
    """A frame is read by the trusted side from a child that may be hostile: anything but a
    well-formed frame of plain numeric arrays is a ValueError (the sandbox then reports a broken
    child), never an array that reads memory, text the checks would take for numbers, or a crash."""
    with pytest.raises(ValueError, match="malformed frame"):
        wire.unpack(payload)


def test_frames_carry_every_plain_dtype_and_layout_back_writable():
    arrays = {"t": np.arange(6, dtype=np.float32).reshape(2, 3).T, "s": np.array(2.5), "e": np.zeros((0, 3), np.int64),
              "b": np.array([True, False]), "h": np.float16([1, 2]), "u": np.uint8([255]), "i": np.int8([-3])}
    header, back = wire.unpack(wire.pack({"event": "case", "n": [1, "x"]}, arrays)[wire.HDR.size:])
    assert header == {"event": "case", "n": [1, "x"]}
    for key, arr in arrays.items():
        assert back[key].dtype == arr.dtype and back[key].shape == arr.shape and np.array_equal(back[key], arr)
        assert back[key].flags.writeable
    with pytest.raises(TypeError, match="unsupported array dtype"):
        wire.pack({}, {"o": np.array([object()])})


def test_strict_mode_names_a_virtualenv_the_sandbox_users_cannot_read(tmp_path):
    from autograder.runner import unreadable_for_others

    closed = tmp_path / "closed"
    (closed / "venv").mkdir(parents=True)
    os.chmod(closed, 0o700)
    blocked = unreadable_for_others(closed / "venv")
    assert blocked is not None and str(closed).startswith(blocked)
    os.chmod(closed, 0o755)
    opened = Path(tempfile.mkdtemp(prefix="rlkit-open-"))
    try:
        os.chmod(opened, 0o755)
        assert unreadable_for_others(opened) is None
    finally:
        shutil.rmtree(opened)


def test_reports_list_what_is_active_apart_from_what_is_missing():
    """Students once read "NOT ACTIVE: ..." in a list that mixed both; now the missing ones have a line of their own."""
    from autograder import report as rep

    r = {"submission": "x", "device": "cpu", "sandbox": "strict", "errors": [], "exercises": [], "total": 0,
         "max_total": 0, "seconds": 1, "inputs": "published",
         "protections": ["its own PID namespace (other processes are invisible)"],
         "missing_protections": ["a user of its own (needs a root grader and setpriv)"]}
    text = rep.terminal(r)
    out = rep.gradescope(r)["output"]
    for shown in (text, out):
        assert "NOT ACTIVE" not in shown
        active, missing = shown.index("PID namespace"), shown.index("a user of its own")
        assert active < missing and "ot available on" in shown[active:missing]


# ---------------------------------------------------------------- 8. what an answer may cost the grader
def test_a_flood_of_frames_costs_the_grader_little():
    """A red team wrote 16 MB of empty frames per request: every one was kept as a "garbage" entry
    (0.9 GB and 44 s for that request; 5.7 GB at 128 MB). At most one frame per case and a few more
    are read, garbage is noted once, and the zygote's summary, always last, still counts."""
    from autograder.sandbox import MAX_ANSWER_JSON, parse_answer

    summary = wire.pack({"event": "exit", "timed_out": False, "exit": {"code": 0}, "log_tail": ""})
    frames = parse_answer(wire.HDR.pack(0) * 200_000 + summary, 3)
    assert [h["event"] for h, _ in frames] == ["garbage", "exit"]
    # frames that parse, of an event nobody asked for, each with 2 MB of JSON: the JSON budget ends it
    junk = wire.pack({"event": "junk", "x": "y" * (2 << 20)})
    frames = parse_answer(junk * 40 + summary, 40)
    assert len(frames) <= MAX_ANSWER_JSON // (2 << 20) + 1 and frames[-1][0]["event"] == "exit"
    # and the zygote passes on no more than that either
    assert len(wire.whole_frames(wire.HDR.pack(0) * 1000, 3 + wire.MAX_EXTRA_FRAMES)) == (3 + wire.MAX_EXTRA_FRAMES) * 8


@pytest.mark.parametrize("frame, why", [
    ({"kind": "number", "value": 10 ** 400, "type": "int"}, "an int no float holds"),
    ({"kind": "tensor", "key": "a0", "device": "no-such-device", "shape": [2]}, "a device torch does not know"),
    ({"kind": "tensor", "key": "a0", "device": True, "shape": [2]}, "a device that is not a name"),
    ({"kind": "numbers", "key": "m", "type": "list"}, "a list of numbers on two axes"),
    ({"kind": "numbers", "key": "s", "type": "list"}, "a list of numbers on no axis"),
])
def test_a_result_the_checks_cannot_read_is_garbage(frame, why):
    """Each of these passed the frame check and then made a check raise (a grader error on demand)."""
    from autograder.sandbox import _frame_ok

    arrays = {"a0": np.zeros(2), "m": np.zeros((2, 2)), "s": np.zeros(())}
    assert not _frame_ok({"event": "case", "index": 0, "ok": True, "output": frame}, arrays), why
    good = {"kind": "tensor", "key": "a0", "device": "cuda:1", "shape": [2]}
    assert _frame_ok({"event": "case", "index": 0, "ok": True, "output": good}, arrays)
    assert not _frame_ok({"event": "case", "index": 0, "ok": True, "output": good, "seconds": 10 ** 400}, arrays)


def test_frames_hold_this_machines_byte_order_only():
    """torch refuses arrays of the other byte order (a grader error in ex5's RLHF run): a frame of
    them is malformed, and pack() turns a student's big-endian array into a native one."""
    big = np.arange(3, dtype=">f8")
    header, arrays = wire.unpack(wire.pack({"event": "x"}, {"a": big})[wire.HDR.size:])
    assert arrays["a"].dtype.isnative and np.array_equal(arrays["a"], big)
    meta = json.dumps({"header": {}, "arrays": [["a", ">f8" if sys.byteorder == "little" else "<f8", [3]]]}).encode()
    with pytest.raises(ValueError, match="malformed"):
        wire.unpack(wire.MAGIC + len(meta).to_bytes(4, "big") + meta + big.tobytes())


def test_a_zygote_ends_a_request_nobody_waits_for(tmp_path):
    """A batch kills a grader on its timeout. Its sandbox's zygote (a keeper of the fork server's,
    not in the grader's process group) went on running the student's endless function until the
    request's own deadline (up to 240 s for a learning run), after the batch had removed its
    folder and freed its user id. It now ends, with its child, when the grader's end of its
    request pipe closes."""
    import threading
    import time

    from autograder.client import Submission

    src = ref("ex1_values") + "\n\ndef discounted_returns(*a, **k):\n    while True:\n        pass\n"
    folder = make_submission(tmp_path / "sub", {"ex1_values.py": src}, from_solutions=False)
    sub = Submission(folder, module="ex1_values")
    sub.sandbox.restart()
    import torch

    caller = threading.Thread(target=lambda: sub.call("ex1_values", "discounted_returns", torch.zeros(3),
                                                      torch.zeros(3), 0.9, timeout=120), daemon=True)
    caller.start()
    time.sleep(2.0)
    zygote = sub.sandbox.proc  # (the sandbox lets go of it once its answer ends)
    assert caller.is_alive() and zygote.poll() is None  # the child spins, the grader waits
    os.close(sub.sandbox.to_child)  # what the grader's death does to it
    end = time.monotonic() + 10
    while zygote.poll() is None and time.monotonic() < end:
        time.sleep(0.1)
    gone = zygote.poll() is not None
    zygote.kill()
    assert gone, "the zygote kept running a request nobody waits for"
    caller.join(30)
    assert not caller.is_alive()
