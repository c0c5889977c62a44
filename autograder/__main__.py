"""python -m autograder PATH [--json FILE] [--exercise NAME] [--device cpu|cuda] [--format ...]

Exit status 0 when grading completed (whatever the score); 2 when the grader
itself could not run (the message says why).
"""
from __future__ import annotations

import argparse
import json
import sys

from . import report as rep
from .options import GradingOptions
from .runner import available_exercises, grade
from .sandbox import GraderError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description="Grade a folder of rlkit exercise modules.")
    p.add_argument("submission", nargs="?", default="assignments", help="folder holding ex1_values.py ... (default: assignments)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    p.add_argument("--format", choices=["terminal", "json", "gradescope"], default="terminal",
                   help="what to print (gradescope: results.json to --output or stdout)")
    p.add_argument("--output", metavar="FILE", help="with --format gradescope/json: write there instead of stdout")
    p.add_argument("--exercise", action="append", metavar="NAME", help=f"grade only this exercise ({', '.join(available_exercises())}); repeatable")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the device inputs are created on)")
    p.add_argument("--jobs", type=int, default=None, help="exercises graded in parallel (default: cores)")
    p.add_argument("--sandbox", choices=["standard", "strict"], default="standard",
                   help="strict (for official grades): a user of its own per sandbox, no network, and it refuses "
                        "to grade where the kernel lacks Landlock or seccomp")
    p.add_argument("--allow-weak-sandbox", action="store_true",
                   help="strict mode: grade even where Landlock or seccomp is missing (every report says so)")
    p.add_argument("--seed", metavar="SECRET", default=None,
                   help="the course seed of the suites' inputs (default: $RLKIT_COURSE_SEED, else the published "
                        "inputs of the student kit); reports carry only a fingerprint of it")
    p.add_argument("-v", "--verbose", action="store_true", help="list passed checks too")
    args = p.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda requested but CUDA is not available here", file=sys.stderr)
            return 2
    try:
        options = GradingOptions(device=args.device, sandbox=args.sandbox, allow_weak=args.allow_weak_sandbox,
                                 course_seed=args.seed, jobs=args.jobs)
        report = grade(args.submission, args.exercise, options)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            f.write(rep.to_json(report))
    if args.format == "terminal":
        print(rep.terminal(report, verbose=args.verbose))
    else:
        text = rep.to_json(report) if args.format == "json" else json.dumps(rep.gradescope(report), indent=2)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        else:
            print(text)
    return 2 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
