"""``make gradescope-check``: the Gradescope zip in a clean Debian root, as Gradescope runs it.

    sudo make gradescope-check                         # build/gradescope.zip, then everything below
    python -m tools.gradescope_check [--zip build/gradescope.zip] [--work build/gradescope-check]
                                     [--fresh-base] [--mirror URL] [--suite bookworm] [--torch-index-url URL]

Gradescope unpacks the autograder zip into ``/autograder/source`` of a fresh image, runs
``setup.sh`` there as root once, and then, for each submission, copies the upload into
``/autograder/submission``, runs ``/autograder/run_autograder`` and reads
``/autograder/results/results.json``. This does the same without a container engine:

1. a minimal Debian (``debootstrap --variant=minbase``), made once and kept pristine in
   ``<work>/debian-<suite>/`` (``--fresh-base`` makes it again);
2. a copy of it, ``<work>/root/``, for this check only: the zip unpacked into
   ``/autograder/source``, ``setup.sh`` run inside (``unshare --mount --pid --fork`` + ``chroot``,
   with /proc, /dev and /sys mounted in the private mount namespace only);
3. ``run_autograder`` on three uploads: the reference solutions (full marks), the stubs of
   ``assignments/`` (zero) and a notebook (zero, with the "upload your modules" message);
4. every ``results.json`` checked against Gradescope's format (``score``; ``tests[]`` with
   ``name``, ``score``, ``max_score``, ``output``, ``visibility``; the other keys Gradescope
   documents, with their types) and against the expected scores.

The pip configuration of this machine goes into the root: ``pip config list`` and ``PIP_*``
variables become ``PIP_*`` variables there, local folders they name (``--find-links``, a
``file://`` index) are bind-mounted read-only at the same path, and local files (a CA bundle,
a constraints file) are copied in. When the CPU wheel index of PyTorch
(https://download.pytorch.org/whl/cpu, setup.sh's default) cannot be reached, ``setup.sh`` gets
``TORCH_INDEX_URL`` = the configured index instead (``--torch-index-url`` chooses another).

Needs root (chroot, mounts), ``debootstrap`` (``apt-get install debootstrap``) and a Debian
mirror (``--mirror``). Times and results go to ``<work>/summary.json``; logs sit next to it.
Exit status 0 when every check passed.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DEFAULT_INDEX = "https://pypi.org/simple"
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
# Gradescope's results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/)
TOP_KEYS = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str,
            "test_output_format": str, "test_name_format": str, "visibility": str, "stdout_visibility": str,
            "extra_data": dict, "tests": list, "leaderboard": list}
TEST_KEYS = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
             "number": str, "output": str, "output_format": str, "tags": list, "visibility": str,
             "extra_data": dict}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
HOST_FILES = "/etc/rlkit-host-pip"  # where local files named by the pip configuration land in the root


class CheckError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[gradescope-check] {msg}", flush=True)


# ---------------------------------------------------------------- results.json against the spec
def validate(results) -> list[str]:
    """What in ``results`` Gradescope would reject or misread (empty list: valid)."""
    bad = []
    if not isinstance(results, dict):
        return ["results.json is not a JSON object"]
    for key, value in results.items():
        if key not in TOP_KEYS:
            bad.append(f"unknown top-level key {key!r}")
        elif not isinstance(value, TOP_KEYS[key]) or isinstance(value, bool):
            bad.append(f"{key} has type {type(value).__name__}")
    if "score" not in results and not results.get("tests"):
        bad.append("neither score nor tests: Gradescope has nothing to add up")
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITY:
            bad.append(f"{key} = {results[key]!r}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in FORMATS:
            bad.append(f"{key} = {results[key]!r}")
    tests = results.get("tests", [])
    for i, t in enumerate(tests if isinstance(tests, list) else []):
        where = f"tests[{i}]"
        if not isinstance(t, dict):
            bad.append(f"{where} is not an object")
            continue
        for key in ("name", "score", "max_score", "output", "visibility"):  # what this kit always writes
            if key not in t:
                bad.append(f"{where} lacks {key}")
        for key, value in t.items():
            if key not in TEST_KEYS:
                bad.append(f"{where}: unknown key {key!r}")
            elif not isinstance(value, TEST_KEYS[key]) or isinstance(value, bool):
                bad.append(f"{where}.{key} has type {type(value).__name__}")
        if t.get("visibility", "visible") not in VISIBILITY:
            bad.append(f"{where}.visibility = {t.get('visibility')!r}")
        if t.get("status", "passed") not in ("passed", "failed"):
            bad.append(f"{where}.status = {t.get('status')!r}")
        if isinstance(t.get("name"), str) and not t["name"].strip():
            bad.append(f"{where}.name is empty")
        s, m = t.get("score"), t.get("max_score")
        if isinstance(s, (int, float)) and isinstance(m, (int, float)) and not 0 <= s <= m:
            bad.append(f"{where}: score {s} outside [0, {m}]")
    if isinstance(results.get("score"), (int, float)) and isinstance(tests, list) and tests:
        total = sum(t.get("score", 0) for t in tests if isinstance(t, dict))
        if abs(total - results["score"]) > 1e-6:
            bad.append(f"score {results['score']} is not the sum of the tests' scores ({total})")
    try:
        json.dumps(results, allow_nan=False)
    except ValueError as e:
        bad.append(f"not plain JSON: {e}")
    return bad


def kit_points() -> tuple[float, int]:
    """The total points and the number of tests of every suite, as make grade counts them."""
    sys.path.insert(0, str(ROOT))
    from tools import make_notebooks as mk

    tests = [t for ex in mk.available_exercises() for t in mk.suite_tests(ex)]
    return float(sum(t.points for t in tests)), len(tests)


# ---------------------------------------------------------------- the clean root
def _reachable(url: str, timeout: float = 10) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status < 400
    except (OSError, ValueError):
        return False


def make_base(base: Path, suite: str, mirror: str) -> float:
    """debootstrap --variant=minbase into ``base`` (made in a temporary folder, renamed when complete)."""
    exe = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None)
    if not exe:
        raise CheckError("debootstrap is not installed: apt-get install debootstrap (Debian/Ubuntu), then run again")
    release = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    if not _reachable(release, timeout=20):
        raise CheckError(f"cannot reach the Debian mirror ({release}): give a reachable one with --mirror URL "
                         f"(make gradescope-check ARGS='--mirror http://...'), or a proxy in http_proxy")
    tmp = base.with_name(base.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap --variant=minbase {suite} {tmp} {mirror} (a few minutes, once)")
    t = time.monotonic()
    with open(base.parent / "debootstrap.log", "w") as out:
        proc = subprocess.run([exe, "--variant=minbase", suite, str(tmp), mirror], stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise CheckError(f"debootstrap failed (exit {proc.returncode}); see {base.parent / 'debootstrap.log'}")
    shutil.rmtree(base, ignore_errors=True)
    tmp.rename(base)
    return time.monotonic() - t


def pip_settings() -> dict[str, str]:
    """This machine's pip configuration as PIP_* variables (config files first, then the environment)."""
    env: dict[str, str] = {}
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, name = key.rpartition(".")
        if section not in ("global", "install", ":env:"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env["PIP_" + name.upper().replace("-", "_")] = value
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    return env


def localize(env: dict[str, str], root: Path) -> tuple[dict[str, str], list[str]]:
    """Make the local paths in the pip settings work inside ``root``: folders are bind-mounted at the
    same path (returned), files are copied under HOST_FILES (and the setting rewritten)."""
    out, binds = {}, []
    for key, value in env.items():
        words = []
        for word in value.split():
            path = word[len("file://"):] if word.startswith("file://") else word
            if path.startswith("/") and os.path.isdir(path):
                folder = os.path.normpath(path)
                if os.path.basename(folder) == "simple":  # a file:// index: its links point next to simple/
                    folder = os.path.dirname(folder)
                if folder not in binds:
                    binds.append(folder)
            elif path.startswith("/") and os.path.isfile(path):
                dest = f"{HOST_FILES}/{key.lower()}-{os.path.basename(path)}"
                (root / dest.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, root / dest.lstrip("/"))
                word = ("file://" + dest) if word.startswith("file://") else dest
            words.append(word)
        out[key] = " ".join(words)
    return out, binds


def unpack(zip_path: Path, dest: Path) -> None:
    """Unzip keeping the executable bits (Gradescope's unzip does; zipfile.extractall does not)."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)


DRIVER = r'''
set -euo pipefail
R="$1"; shift; BINDS="$1"; shift
mount --make-rprivate /
# the root a mount point of its own, as in a container: unshare --mount (the sandbox's PID
# namespace) changes the propagation of "/", which fails on a plain folder
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t sysfs -o ro sysfs "$R/sys" 2>/dev/null || mount --rbind /sys "$R/sys"
for d in $BINDS; do
    mkdir -p "$R$d"
    mount --bind "$d" "$R$d"
    mount -o remount,bind,ro "$R$d"
done
exec chroot "$R" "$@"
'''


def in_root(root: Path, binds: list[str], env: dict[str, str], command: str, logfile: Path,
            timeout: float) -> tuple[int, float]:
    """Run ``command`` (bash) as root inside ``root``, in a private mount and PID namespace; its
    environment is ``env`` only (like a fresh container). Returns (exit status, seconds)."""
    base_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                "LANG": "C.UTF-8", "TERM": "dumb"}
    args = ["unshare", "--mount", "--pid", "--fork", "bash", "-c", DRIVER, "driver", str(root), " ".join(binds),
            "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in {**base_env, **env}.items()], "/bin/bash", "-c", command]
    t = time.monotonic()
    with open(logfile, "w") as out:
        try:
            proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
            status = proc.returncode
        except subprocess.TimeoutExpired:
            status = 124
    return status, time.monotonic() - t


# ---------------------------------------------------------------- the uploads and what they must score
def uploads() -> dict[str, dict[str, Path]]:
    nb = ROOT / "course" / "source" / "ex1_values" / "ex1_values.ipynb"
    return {
        "solutions": {p.name: p for p in sorted((ROOT / "solutions").glob("ex*_*.py"))},
        "stubs": {p.name: p for p in sorted((ROOT / "assignments").glob("ex*_*.py"))},
        "notebook": {"ex1_values.ipynb": nb},
    }


def expect(case: str, results: dict, total: float, n_tests: int) -> list[str]:
    bad = validate(results)
    tests = results.get("tests", []) if isinstance(results, dict) else []
    score = results.get("score") if isinstance(results, dict) else None
    if case in ("solutions", "stubs"):
        max_sum = sum(t.get("max_score", 0) for t in tests if isinstance(t, dict))
        if len(tests) != n_tests:
            bad.append(f"{len(tests)} tests, expected {n_tests} (one per test of the suites)")
        if abs(max_sum - total) > 1e-6:
            bad.append(f"the tests' max_score add up to {max_sum}, expected {total}")
        want = total if case == "solutions" else 0.0
        if score is None or abs(score - want) > 1e-6:
            lost = [t["name"] for t in tests if isinstance(t, dict) and t.get("score", 0) < t.get("max_score", 0)]
            bad.append(f"score {score}, expected {want}" + (f" (lost: {lost[:5]})" if case == "solutions" else ""))
        if case == "stubs" and not all(t.get("output", "").strip() for t in tests if isinstance(t, dict)):
            bad.append("a failed test without feedback")
    else:
        if score != 0 or tests:
            bad.append(f"a notebook upload scored {score} with {len(tests)} tests, expected 0 and none")
        out = results.get("output", "") if isinstance(results, dict) else ""
        for needle in ("Notebooks (.ipynb) are not graded here", "ex1_values.py", "ex1_values.ipynb"):
            if needle not in out:
                bad.append(f"the message lacks {needle!r}")
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.gradescope_check", description=__doc__.splitlines()[0])
    p.add_argument("--zip", type=Path, default=ROOT / "build" / "gradescope.zip")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "gradescope-check")
    p.add_argument("--suite", default="bookworm", help="Debian release of the root (default: bookworm)")
    p.add_argument("--mirror", default=os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian"))
    p.add_argument("--fresh-base", action="store_true", help="debootstrap again even if the base root exists")
    p.add_argument("--torch-index-url", default=os.environ.get("TORCH_INDEX_URL"),
                   help="setup.sh's TORCH_INDEX_URL (default: the CPU index, or the configured index "
                        "when the CPU index is unreachable)")
    p.add_argument("--case", action="append", choices=sorted(uploads()), help="only these uploads")
    p.add_argument("--timeout", type=float, default=3600, help="seconds for setup.sh and for each run")
    args = p.parse_args(argv)

    try:
        if sys.platform != "linux" or os.geteuid() != 0:
            raise CheckError("needs root on Linux (chroot and mounts): sudo make gradescope-check")
        for tool in ("unshare", "chroot", "mount"):
            if not shutil.which(tool):
                raise CheckError(f"{tool} is missing (util-linux / coreutils)")
        if not args.zip.is_file():
            raise CheckError(f"no {args.zip}: run make gradescope first")
        work = args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        summary: dict = {"zip": str(args.zip), "suite": args.suite, "times_s": {}, "cases": {}}
        base = work / f"debian-{args.suite}"
        if args.fresh_base or not (base / "usr" / "bin" / "apt-get").exists():
            summary["times_s"]["debootstrap"] = round(make_base(base, args.suite, args.mirror), 1)

        root = work / "root"
        t = time.monotonic()
        if root.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)
        subprocess.run(["cp", "-a", str(base), str(root)], check=True)
        summary["times_s"]["copy_root"] = round(time.monotonic() - t, 1)
        shutil.copyfile("/etc/resolv.conf", root / "etc" / "resolv.conf")
        source = root / "autograder" / "source"
        source.mkdir(parents=True)
        unpack(args.zip, source)

        env, binds = localize(pip_settings(), root)
        torch_index = args.torch_index_url
        if not torch_index:
            if _reachable(f"{CPU_INDEX}/torch/"):
                torch_index = CPU_INDEX
            else:
                torch_index = env.get("PIP_INDEX_URL", DEFAULT_INDEX)
                log(f"{CPU_INDEX} is unreachable: TORCH_INDEX_URL={torch_index} (the configured index"
                    + (f"; local wheels: {env['PIP_FIND_LINKS']}" if "PIP_FIND_LINKS" in env else "") + ")")
        env.update(TORCH_INDEX_URL=torch_index, DEBIAN_FRONTEND="noninteractive")
        summary["pip"] = {k: v for k, v in env.items() if k.startswith(("PIP_", "TORCH_"))}
        summary["binds"] = binds
        log("pip in the root: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in summary["pip"].items()))

        log("setup.sh in the clean root (apt-get, the virtualenv, torch, requirements.txt) ...")
        status, secs = in_root(root, binds, env, "cd /autograder/source && bash ./setup.sh",
                               work / "setup.log", args.timeout)
        summary["times_s"]["setup.sh"] = round(secs, 1)
        log(f"setup.sh: exit {status} in {secs:.0f} s (log: {work / 'setup.log'})")
        if status:
            tail = (work / "setup.log").read_text(errors="replace")[-3000:]
            raise CheckError(f"setup.sh failed (exit {status}):\n{tail}")
        shutil.copy2(source / "run_autograder", root / "autograder" / "run_autograder")  # as Gradescope does

        total, n_tests = kit_points()
        failed = False
        for case, files in uploads().items():
            if args.case and case not in args.case:
                continue
            for sub in ("submission", "results"):
                shutil.rmtree(root / "autograder" / sub, ignore_errors=True)
                (root / "autograder" / sub).mkdir()
            for name, path in files.items():
                shutil.copyfile(path, root / "autograder" / "submission" / name)
            status, secs = in_root(root, [], {}, "cd /autograder && ./run_autograder",
                                   work / f"run-{case}.log", args.timeout)
            results_path = root / "autograder" / "results" / "results.json"
            try:
                results = json.loads(results_path.read_text())
            except (OSError, ValueError) as e:
                results, problems = {}, [f"no readable results.json: {e}"]
            else:
                problems = expect(case, results, total, n_tests)
            if status:
                problems.append(f"run_autograder exited {status}")
            if results:
                shutil.copyfile(results_path, work / f"results-{case}.json")
            summary["times_s"][f"run_{case}"] = round(secs, 1)
            summary["cases"][case] = {"score": results.get("score"), "tests": len(results.get("tests", [])),
                                      "max": sum(t.get("max_score", 0) for t in results.get("tests", [])),
                                      "problems": problems}
            failed |= bool(problems)
            log(f"{case}: score {results.get('score')} of {summary['cases'][case]['max']:g} in {secs:.0f} s: "
                + ("results.json valid, as expected" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems)))
        (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        log("times (s): " + ", ".join(f"{k} {v}" for k, v in summary["times_s"].items()))
        log(f"summary: {work / 'summary.json'}")
        return 1 if failed else 0
    except CheckError as e:
        log(f"FAILED: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
