"""Building blocks the suites share: run cases in the sandbox, compare with the reference.

A suite test usually reads

    cases = [Call(rewards, dones, 0.9, label="T=7, gamma=0.9"), ...]
    compare(sub, dev, "ex1_values", "discounted_returns", cases, ref.discounted_returns,
            mistakes=return_mistakes)

The reference runs here, in the trusted parent, on CPU; the student's
function runs in the sandbox on the grading device.
"""
from __future__ import annotations

import functools
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from . import checks
from .checks import CheckFailed, Mistake
from .child.wire import walk
from .client import Case, Submission, tensor


@dataclass
class Call:
    """Arguments of one call (torch tensors are sent as tensors, the rest as JSON)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    requires_grad: Sequence[Any] = ()  # indices / names of tensor args that get requires_grad

    def __init__(self, *args, label: str = "", requires_grad: Sequence[Any] = (), **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.label = label
        self.requires_grad = requires_grad


def _spec(value, rg: bool):
    if isinstance(value, torch.Tensor):
        return tensor(value, requires_grad=rg)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        from .client import listof

        return listof([tensor(v, requires_grad=rg) for v in value])
    return value


PLAIN_SGD_SOURCE = (Path(__file__).resolve().parent / "plain_sgd.py").read_text()
"""The text of ``autograder/plain_sgd.py``, for the suites' driver modules (they run in the sandbox)."""


def later(compute: Callable[[], Any]) -> Callable[[], Any]:
    """``compute``, called once when its value is first asked for: a mistake's value is only needed
    once an answer is wrong, and computing every known mistake for every correct answer cost a
    graded submission about a CPU-second. While answers are being recorded for the student kit it
    is called now instead, so that a later submission finds every value it may need recorded."""
    from .oracle import recording

    value = functools.cache(compute)  # (no arguments: one value)
    if recording():
        value()
    return value


class Named:
    """(key, message, value) for each variant the answers module computes, in its order, computed
    on the first iteration (see :func:`later`); iterate it as often as needed."""

    def __init__(self, messages: dict, variants: Callable[[], dict]):
        self.messages = messages
        self.values = later(lambda: _variants_or_none(variants))

    def __iter__(self):
        return iter([(k, self.messages[k], lambda v=v: v) for k, v in self.values().items()])


def _variants_or_none(variants: Callable[[], dict]) -> dict:
    try:
        return variants()
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError, IndexError):
        return {}  # a variant that cannot be computed for these inputs names no mistake


def named(messages: dict, variants: Callable[[], dict]) -> Named:
    """(key, message, value) for each variant ``variants()`` computes, lazily (see :class:`Named`)."""
    return Named(messages, variants)


class EachRead:
    """``mistakes`` with each value passed through ``read`` (e.g. read at the submission's own
    actions), still lazy and re-iterable."""

    def __init__(self, mistakes: Iterable[Mistake], read: Callable[[Any], Any]):
        self.mistakes, self.read = mistakes, read

    def __iter__(self):
        for key, msg, make in self.mistakes:
            yield key, msg, (lambda make=make: self.read(make()))


def to_case(call: Call, grad_weights: dict | None = None, seed: int | None = None) -> Case:
    args = tuple(_spec(a, i in call.requires_grad) for i, a in enumerate(call.args))
    kwargs = {k: _spec(v, k in call.requires_grad) for k, v in call.kwargs.items()}
    return Case(args, kwargs, grad_weights, seed)


def run(sub: Submission, module: str, function: str, calls: list[Call], timeout: float = 20, **kw):
    return sub.call_many(module, function, [to_case(c) for c in calls], timeout=timeout, **kw)


def compare(sub: Submission, dev: str, module: str, function: str, calls: list[Call],
            reference: Callable, *, outputs: Sequence[str] = ("",), labels: Sequence[str] | None = None,
            dtype: str | None = "float32", rtol: float = 1e-4, atol: float = 1e-5,
            mistakes: Callable[[Call], Iterable[Mistake]] | None = None, timeout: float = 20,
            check_inputs: bool = True) -> None:
    """Every output of every call must match the reference (shape, dtype, device, values)."""
    results = run(sub, module, function, calls, timeout=timeout)
    for call, res in zip(calls, results):
        checks.require_ok(res, function)
        ref_out = reference(*call.args, **call.kwargs)
        for k, path in enumerate(outputs):
            label = labels[k] if labels else "the result"
            leaf = checks.tensor_output(res, function, path, label)
            expected = walk(ref_out, path)
            wrong = _at_path(mistakes, call, path) if mistakes is not None else []
            checks.assert_tensor(leaf, expected, function, device=dev, label=label, dtype=dtype,
                                 rtol=rtol, atol=atol, mistakes=wrong, context=call.label)
        if check_inputs:
            originals = {f"arg{i}": a for i, a in enumerate(call.args) if isinstance(a, torch.Tensor)}
            originals.update({k: v for k, v in call.kwargs.items() if isinstance(v, torch.Tensor)})
            checks.assert_inputs_unchanged(res, originals, function)


def _at_path(mistakes: Callable[[Call], Iterable[Mistake]], call: Call, path: str):
    """The mistakes of ``call``, each read at one output ``path``; nothing is computed before the
    first one is asked for (a generator's body runs on its first ``next``)."""
    yield from EachRead(mistakes(call), lambda value: walk(value, path))


def reference_gradients(reference, args: tuple, kwargs: dict, keys: list, weights: dict) -> dict:
    """d<w, reference(args)>/d(arg) for each key; live, or recorded when ``reference`` is an answer seam."""
    from .oracle import SeamFunction

    if isinstance(reference, SeamFunction):
        return reference.gradients(tuple(args), dict(kwargs), keys, weights)
    from .answers._base import gradients_of  # (the full kit only: a student kit has no answers/)

    return gradients_of(reference, tuple(args), dict(kwargs), keys, weights)


def gradients(sub: Submission, dev: str, module: str, function: str, call: Call, reference: Callable,
              expect: dict[Any, bool], outputs: Sequence[str] = ("",), seed: int = 0,
              names: dict[Any, str] | None = None, rtol: float = 1e-4, atol: float = 1e-5,
              mistakes: Callable[[Any], Iterable[Mistake]] | None = None, timeout: float = 20) -> None:
    """Gradient of sum_k <w_k, output_k> w.r.t. each tensor arg in ``expect``.

    ``expect[arg] = True``: must match the reference gradient; ``False``: must
    receive none. ``arg`` is a positional index or a keyword name.
    """
    rng = np.random.default_rng(seed)
    ref_out = reference(*call.args, **call.kwargs)
    weights = {p: rng.normal(size=tuple(walk(ref_out, p).shape)) for p in outputs}
    call = Call(*call.args, label=call.label, requires_grad=tuple(expect), **call.kwargs)
    (res,) = sub.call_many(module, function, [to_case(call, grad_weights=weights)], timeout=timeout)
    checks.require_ok(res, function)
    # the reference gradients, in float64 (through the answer seam when the reference is one)
    grads = reference_gradients(reference, call.args, call.kwargs, list(expect), weights)
    for key, should in expect.items():
        path = f"arg{key}" if isinstance(key, int) else key
        label = (names or {}).get(key, path)
        g = grads.get(key)
        expected = None if (g is None or not should) else checks.to_numpy(g)
        if should and expected is None:
            raise RuntimeError(f"reference gives no gradient for {label}")
        wrong = mistakes(key) if mistakes is not None else []  # lazy: see later()
        checks.assert_grad(res, path, expected, function, label, rtol=rtol, atol=atol, mistakes=wrong)


MAX_NETWORK_PARAMS = 2_000_000  # far above any exercise's network (CartPole's are ~10k)
MAX_WIDTH, MAX_DEPTH = 4096, 8


def _mlp_params(n_in: int, n_out: int, hidden: list) -> int:
    sizes = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def network_size_problem(cls: str, config: dict, state: dict) -> str | None:
    """Why a returned network's ``config`` may not be built here, checked BEFORE building it
    (the child chose the config: a huge one would cost the trusted side time and memory)."""
    widths = {k: config.get(k) for k in ("obs_dim", "n_actions") if k in config}
    hiddens = {k: config.get(k) for k in ("hidden", "critic_hidden") if k in config}
    if not all(type(v) is int and 1 <= v <= MAX_WIDTH for v in widths.values()):
        return f"its config has sizes out of range (1..{MAX_WIDTH}): {widths}"
    for k, h in hiddens.items():
        if not (isinstance(h, list) and len(h) <= MAX_DEPTH and all(type(x) is int and 1 <= x <= MAX_WIDTH for x in h)):
            return f"its config's {k} must be at most {MAX_DEPTH} layer widths in 1..{MAX_WIDTH}"
    try:
        obs = widths["obs_dim"]
        if cls == "PolicyNet":
            expected = _mlp_params(obs, widths["n_actions"], hiddens.get("hidden", [64, 64]))
        elif cls == "ValueNet":
            expected = _mlp_params(obs, 1, hiddens.get("hidden", [64, 64]))
        else:  # ActorCritic
            hidden = hiddens.get("hidden", [64, 64])
            expected = (_mlp_params(obs, widths["n_actions"], hidden)
                        + _mlp_params(obs, 1, hiddens.get("critic_hidden") or hidden))
    except KeyError as exc:
        return f"its config lacks {exc}"
    got = sum(int(a.size) for a in state.values())
    if expected > MAX_NETWORK_PARAMS:
        return f"its config asks for {expected:,} parameters (the grader rebuilds at most {MAX_NETWORK_PARAMS:,})"
    if expected != got:
        return f"its config implies {expected:,} parameters but its weights hold {got:,}"
    return None


def rebuild_network(leaf, what: str, label: str = "the trained policy") -> torch.nn.Module:
    """Rebuild a returned ``common.networks`` module in the trusted parent from its weights.

    The parent evaluates this copy; the student's own object never runs here.
    """
    from common.networks import NETWORKS, rebuild

    if leaf is None or leaf.kind != "network":
        got = leaf.describe() if leaf is not None else "nothing"
        raise CheckFailed(f"{what}(): {label} should be a common.networks module, got {got}")
    cls = NETWORKS.get(leaf.info["class"])
    if cls is None:
        raise CheckFailed(f"{what}(): {label} is a {leaf.info['class']}; use one of the networks in "
                          f"common.networks ({', '.join(sorted(NETWORKS))}) so the grader can evaluate it")
    problem = network_size_problem(leaf.info["class"], leaf.info["config"], leaf.info["state"])
    if problem:
        raise CheckFailed(f"{what}(): could not rebuild {label}: {problem}")
    try:
        net = rebuild(leaf.info["class"], leaf.info["config"],
                      {k: torch.as_tensor(v) for k, v in leaf.info["state"].items()})
    except Exception as exc:  # wrong config or weights that do not fit
        raise CheckFailed(f"{what}(): could not rebuild {label} from its config and weights ({exc})") from None
    for p in net.parameters():
        if not torch.isfinite(p).all():
            raise CheckFailed(f"{what}(): {label} has non-finite weights")
    return net.eval()


# ------------------------------------------------------------------ learning tests
def episode_returns(res, what: str) -> list[float]:
    """The learning curve a training function returned (``TrainResult.episode_returns``) as floats."""
    leaf = checks.output_leaf(res, what, "episode_returns", "TrainResult.episode_returns")
    if leaf.kind == "numbers":
        return [float(x) for x in leaf.array]
    if leaf.kind == "sequence":
        vals = []
        for k in sorted(leaf.children, key=int):
            c = leaf.children[k]
            if c.kind not in ("number", "tensor") or c.array is None or c.array.size != 1:
                raise CheckFailed(f"{what}(): episode_returns should hold numbers, got {c.describe()}")
            vals.append(float(np.asarray(c.array, dtype=np.float64).reshape(())))
        return vals
    raise CheckFailed(f"{what}(): episode_returns should be a list of floats, got {leaf.describe()}")


# ------------------------------------------------------------------ training in the background
_background: dict = {}  # (id(sub), key) -> Future of a list of CallResults


def _cases(calls: list) -> list[Case]:
    return [c if isinstance(c, Case) else to_case(c) for c in calls]


def in_background(sub: Submission, key: str, module: str, function: str, calls: list,
                  timeout: float) -> None:
    """Start ``calls`` now, in a second sandbox of the submission (``Submission.twin``), while the
    suite's other checks go on in the first: a learning run takes seconds of one core, and a
    grade of one exercise has two. Only where that sandbox is a fork (``forks_cheaply``); else
    :func:`results` runs the calls when a test asks. The second sandbox is confined alike and
    shares nothing with the first (not even its folder), and it is closed after the calls."""
    if (id(sub), key) in _background or not sub.forks_cheaply():
        return
    future: Future = Future()

    def work():
        twin = sub.twin()
        try:
            future.set_result(twin.call_many(module, function, _cases(calls), timeout=timeout))
        except BaseException as exc:  # noqa: BLE001 - the test that takes it raises it
            future.set_exception(exc)
        finally:
            twin.close()

    threading.Thread(target=work, name=f"background {key}", daemon=True).start()
    _background[(id(sub), key)] = future


def results(sub: Submission, key: str, module: str, function: str, calls: list, timeout: float) -> list:
    """The CallResults of ``calls`` (:class:`Call` or :class:`Case`): those :func:`in_background`
    started under ``key`` (the same calls), else run now."""
    future = _background.pop((id(sub), key), None)
    if future is not None:
        return future.result()
    return sub.call_many(module, function, _cases(calls), timeout=timeout)


def learning_selected(request) -> bool:
    """Whether this run includes the learning tests of the requesting suite."""
    suite = request.module.__name__
    return any(item.get_closest_marker("learning") is not None and item.module.__name__ == suite
               for item in request.session.items)


_train_cache: dict = {}


def _train_calls(request, seed_calls: list[Call], learn_call: Call, timeout: float) -> tuple[list, float]:
    learning = learning_selected(request)
    return list(seed_calls) + ([learn_call] if learning else []), (timeout if learning else 60)


def start_train_runs(request, sub: Submission, module: str, function: str, seed_calls: list[Call],
                     learn_call: Call, timeout: float) -> None:
    """Start what :func:`train_runs` will return, now, in the background (a suite's module fixture
    does, before its first test)."""
    calls, limit = _train_calls(request, seed_calls, learn_call, timeout)
    in_background(sub, f"train {module}.{function}", module, function, calls, limit)


def train_runs(request, sub: Submission, module: str, function: str, seed_calls: list[Call],
               learn_call: Call, timeout: float) -> dict:
    """A suite's short seed runs and (when its learning tests are selected) its learning run, in ONE
    child, once per submission: ``{"seed": [CallResult, ...], "learn": CallResult | None}`` (those
    :func:`start_train_runs` started, if it did)."""
    key = (id(sub), module, function)
    if key not in _train_cache:
        calls, limit = _train_calls(request, seed_calls, learn_call, timeout)
        res = results(sub, f"train {module}.{function}", module, function, calls, limit)
        n = len(seed_calls)
        _train_cache[key] = {"seed": res[:n], "learn": res[n] if len(res) > n else None}
    return _train_cache[key]


def training_runs(train_args: Callable[[str], tuple]):
    """A suite's ``(module fixture, getter)`` for its training runs: the fixture starts them before
    the first test (:func:`start_train_runs`), the getter returns them (:func:`train_runs`).
    ``train_args(dev)`` gives ``(module, function, seed_calls, learn_call, timeout)``. In a suite:

        _training_starts_first, _train_runs = training_runs(_train_args)
    """
    import pytest

    @pytest.fixture(scope="module", autouse=True)
    def starts_first(request, sub, dev):
        start_train_runs(request, sub, *train_args(dev))

    def get(request, sub, dev) -> dict:
        return train_runs(request, sub, *train_args(dev))

    return starts_first, get
