"""Reports: a terminal table, the JSON report, and Gradescope's results.json.

JSON shape (more fields are fine)::

    {"total": float, "max_total": float,
     "exercises": [{"name": str, "score": float, "max_score": float,
                    "tests": [{"name": str, "function": str, "score": float,
                               "max_score": float, "passed": bool, "feedback": str}]}]}
"""
from __future__ import annotations

import json
from collections import OrderedDict


def _by_function(tests: list[dict]) -> "OrderedDict[str, list[dict]]":
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for t in tests:
        groups.setdefault(t.get("function") or "-", []).append(t)
    return groups


def terminal(report: dict, verbose: bool = False) -> str:
    """One row per function (points), one line of feedback per failed check."""
    lines = [f"rlkit autograder: {report['submission']} (device {report['device']})", ""]
    head = f"{'exercise':<15} {'function':<26} {'points':>13}"
    lines += [head, "-" * len(head)]
    for ex in report["exercises"]:
        if not ex["module_present"]:
            lines.append(f"{ex['name']:<15} {'(module missing: ' + ex['name'] + '.py)':<26} "
                         f"{ex['score']:>5.1f} / {ex['max_score']:<5.1f}")
        for fn, tests in _by_function(ex["tests"]).items():
            got = sum(t["score"] for t in tests)
            mx = sum(t["max_score"] for t in tests)
            mark = "ok" if got == mx else ("--" if got == 0 else "~")
            lines.append(f"{ex['name']:<15} {fn:<26} {got:>5.1f} / {mx:<5.1f} {mark}")
            seen = set()
            for t in tests:
                if t["passed"]:
                    if verbose:
                        lines.append(f"{'':<17}pass  {t['name']}")
                    continue
                msg = t["feedback"] or "failed"
                if msg in seen and not verbose:
                    continue  # e.g. "not implemented" once per function is enough
                seen.add(msg)
                lines.append(f"{'':<17}x {msg}" + (f"   [{t['name']}]" if verbose else ""))
        lines.append(f"{'':<15} {'subtotal ' + ex['name']:<26} {ex['score']:>5.1f} / {ex['max_score']:<5.1f}")
        lines.append("")
    lines.append(f"{'TOTAL':<42} {report['total']:>5.1f} / {report['max_total']:<5.1f}")
    for err in report.get("errors", []):
        lines.append(f"GRADER ERROR: {err}")
    if report.get("protections"):
        lines.append(f"sandbox ({report.get('sandbox', 'standard')}): " + "; ".join(report["protections"]))
    if report.get("missing_protections"):
        lines.append("not available on this machine: " + "; ".join(report["missing_protections"]))
    if report.get("inputs"):
        lines.append(f"inputs: {report['inputs']}")
    lines.append(f"graded in {report['seconds']:.1f} s")
    return "\n".join(lines)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)


def gradescope(report: dict) -> dict:
    """Gradescope's results.json: score, tests[] (name, score, max_score, output, visibility)."""
    tests = []
    for ex in report["exercises"]:
        for t in ex["tests"]:
            tests.append({
                "name": f"{ex['name']}.{t['function']}: {t['name']}",
                "score": t["score"],
                "max_score": t["max_score"],
                "output": "passed" if t["passed"] else t["feedback"],
                "visibility": "visible",
            })
    extra = "Sandbox: " + "; ".join(report.get("protections") or []) if report.get("protections") else ""
    if report.get("missing_protections"):
        extra += "\nNot available on the grading machine: " + "; ".join(report["missing_protections"])
    if report.get("errors"):
        extra += "\nGrader errors: " + " | ".join(report["errors"])
    return {
        "score": report["total"],
        "execution_time": int(round(report.get("seconds", 0))),
        "output": extra.strip(),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
