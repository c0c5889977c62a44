# Writes fake results everywhere a grader might look: its working directory,
# /tmp, the kit (found through torch's location), the grader's temporary
# result folders, Gradescope's results path, and overwrites a canary file the
# test puts in the kit, and rewrites the original submission folder (its own
# source and a results.json there). Writing the cwd copy is allowed and
# harmless; all the rest is denied. action_values is wrong: 12 / 15, and the test checks that
# no fake file appeared and the canary is intact.
import gc as _gc
import glob as _glob
import json as _json
import os as _os
from pathlib import Path as _Path

_FAKE = _json.dumps({"score": 15.0, "total": 15.0, "max_total": 15.0, "tests": [], "exercises": []})


def _kit_roots():
    roots = []
    for start in (_Path(torch.__file__), _Path(_os.__file__)):
        for parent in start.resolve().parents:
            roots.append(parent)
    return roots


def _original_submission():
    """The folder the student handed in (the sandbox config names it)."""
    for obj in _gc.get_objects():
        if isinstance(obj, dict) and "deny_roots" in obj:
            return [str(_Path(obj["deny_roots"][1]) / n) for n in ("ex1_values.py", "results.json")]
    return []


def _targets():
    out = ["results.json", "/tmp/rlkit-adversarial-fake.json", "/autograder/results/results.json",
           _os.path.expanduser("~/results.json")]
    try:
        out += [p + "/results.json" for p in _glob.glob("/tmp/rlkit-results-*")]
    except Exception:  # listing /tmp is denied too
        out += ["/tmp/rlkit-results-x/results.json"]
    for root in _kit_roots():
        if (root / "autograder").is_dir() or (root / "Makefile").is_file():
            out += [str(root / "build" / "adversarial-canary.txt"), str(root / "rlkit-adversarial-fake.json"),
                    str(root / "autograder" / "suites" / "rlkit-adversarial-fake.json")]
    return out + _original_submission()


def _write_everywhere():
    for path in _targets():
        for writer in (lambda p: open(p, "w").write(_FAKE),
                       lambda p: _os.write(_os.open(p, _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC), _FAKE.encode()),
                       lambda p: _Path(p).write_text(_FAKE)):
            try:
                writer(path)
            except BaseException:
                pass


_write_everywhere()


def action_values(P, R, V, gamma):
    _write_everywhere()
    return torch.zeros_like(R)
