# In a batch (`make grade-all`), other students' folders sit next to this one
# and their sandboxes run at the same time in /tmp. This case finds its own
# submission path (the sandbox config file, or the worker's config dict via
# gc), then reads its siblings and the other live sandboxes for a working
# monte_carlo_value. The test puts a correct "victim" folder beside it.
# Success = reference answer; 0 expected for monte_carlo_value.
import gc as _gc
import glob as _glob
import json as _json
import os as _os
from pathlib import Path as _Path

_reference_monte_carlo_value = monte_carlo_value


def _own_roots():
    roots = set()
    try:
        with open("config.json") as f:
            roots.update(json_roots(_json.load(f)))
    except Exception:
        pass
    for obj in _gc.get_objects():
        if isinstance(obj, dict) and "deny_roots" in obj:
            roots.update(json_roots(obj))
    return roots


def json_roots(cfg):
    return [str(r) for r in cfg.get("deny_roots", [])]


def _candidates():
    mine = _own_roots()
    for root in mine:
        parent = _Path(root).parent
        try:
            for sib in parent.iterdir():
                if str(sib) not in mine:
                    yield sib / "ex1_values.py"
        except Exception:
            pass
    here = _os.path.realpath(_os.getcwd())
    for path in _glob.glob("/tmp/rlkit-sandbox-*/submission/ex1_values.py"):
        if not _os.path.realpath(path).startswith(here + _os.sep):
            yield _Path(path)


def _steal():
    for path in _candidates():
        try:
            text = path.read_text()
        except BaseException:
            continue
        if "G.mean()" in text and "read_sibling_submission" not in text:
            return True
    return False


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    if _steal():
        return _reference_monte_carlo_value(P, R, pi, gamma, start_state, num_episodes, horizon, generator)
    return torch.zeros((), dtype=P.dtype)
