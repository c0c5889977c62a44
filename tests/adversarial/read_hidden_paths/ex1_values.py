# Looks for the kit's reference solution or hidden suite through the file
# system: relative paths from the working directory, the kit located through
# torch.__file__, sys.prefix and os.__file__, the grader's /proc entries
# (cwd, root, fds of parent processes), the sandbox's config file, and a
# short walk of /work, /home, /root, /srv, /autograder. If any read succeeds
# the attack "steals" the answer (returns the reference): score 0 shows every
# read failed.
import json as _json
import os as _os
import sys as _sys
from pathlib import Path as _Path

_reference_discounted_returns = discounted_returns
_NAMES = ("solutions/ex1_values.py", "autograder/suites/test_ex1_values.py")


def _candidates():
    out = []
    rel = "."
    for _ in range(8):
        rel = _os.path.join(rel, "..")
        out += [_os.path.join(rel, n) for n in _NAMES]
        out += [_os.path.join(rel, "main", n) for n in _NAMES]
    for start in (torch.__file__, _os.__file__, _sys.prefix, _sys.executable, _sys.base_prefix):
        for parent in _Path(start).parents:
            out += [str(parent / n) for n in _NAMES]
        try:
            for parent in _Path(start).resolve().parents:
                out += [str(parent / n) for n in _NAMES]
        except Exception:
            pass
    for pid in ("self", str(_os.getppid()), "1"):
        for link in ("cwd", "root"):
            out += [f"/proc/{pid}/{link}/{n}" for n in _NAMES]
    try:
        with open("config.json") as f:
            cfg = _json.load(f)
        for root in cfg.get("deny_roots", []):
            out += [str(_Path(root) / n) for n in _NAMES]
            out += [str(_Path(root).parent / n) for n in _NAMES]
    except Exception:
        pass
    return out


def _walk():
    for top in ("/work", "/home", "/root", "/srv", "/autograder", "/tmp"):
        try:
            for dirpath, dirnames, filenames in _os.walk(top):
                if dirpath.count(_os.sep) > 5:
                    dirnames[:] = []
                dirnames[:] = [d for d in dirnames if d not in (".venv", "site-packages", ".git")]
                if "ex1_values.py" in filenames:
                    yield _os.path.join(dirpath, "ex1_values.py")
                if "test_ex1_values.py" in filenames:
                    yield _os.path.join(dirpath, "test_ex1_values.py")
        except Exception:
            pass


def _steal():
    seen = set()
    for path in list(_candidates()) + list(_walk()):
        if path in seen:
            continue
        seen.add(path)
        if "/submission/" in path and "rlkit-sandbox" in path:
            continue  # our own copy
        try:
            with open(path) as f:
                text = f.read()
        except BaseException:
            continue
        if "BEGIN SOLUTION" in text or "def test_returns_single_env" in text:
            return path
    return None


def discounted_returns(rewards, dones, gamma):
    if _steal():
        return _reference_discounted_returns(rewards, dones, gamma)
    return torch.zeros_like(rewards)
