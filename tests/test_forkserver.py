"""The fork server: sandboxes' zygotes forked from one warm Python (``autograder/forkserver.py``).

A forked zygote must be what a zygote started as a new Python is: the same
answers, the same protections, the same confinement of its children, and
nothing more in its memory or its file descriptors. The fork server must not
become a way out: no child holds its socket, no zygote inherits another
sandbox's request, and a sandbox whose keeper dies dies with it.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from autograder import forkserver, sandbox
from autograder.client import Submission
from autograder.forkserver import ForkedZygote

MODES = ["standard", "strict"]

SOURCE = r'''
import os
import time

import torch


def add(a, b):
    return a + b


def identity():
    """What this child is: user, capabilities, namespace, file descriptors."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    try:
        nets = [line.split(":")[0].strip() for line in open("/proc/self/net/dev").read().splitlines()[2:]]
    except OSError:
        nets = ["?"]
    return {"uid": os.getuid(), "euid": os.geteuid(), "groups": len(os.getgroups()),
            "ipc": os.readlink("/proc/self/ns/ipc"), "mnt": os.readlink("/proc/self/ns/mnt"),
            "caps": " ".join(status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")),
            "seccomp": status["Seccomp"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
            "max_pid": max(pids), "sockets": sum(f.startswith("socket:") for f in fds),
            "interfaces": " ".join(sorted(nets))}


def find(first, second):
    """1 if first+second lies anywhere in this process's writable memory, else 0 (the needle is
    never built here: its halves are separate objects)."""
    first, second = first.encode(), second.encode()
    size = len(first) + len(second)
    maps = [line.split() for line in open("/proc/self/maps").read().splitlines()]
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for fields in maps:
            if not fields[1].startswith("rw"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            pos = start
            while pos < end:
                n = min(end - pos, 8 << 20)
                try:
                    mem.seek(pos)
                    chunk = mem.read(n + size)
                except OSError:
                    break
                at = chunk.find(first)
                while at != -1:
                    if chunk[at + len(first):at + size] == second:
                        return 1
                    at = chunk.find(first, at + 1)
                pos += n
    return 0


def where():
    return os.getcwd()


def adam_steps_without_dynamo():
    import sys

    from common.adam import Adam

    net = torch.nn.Linear(3, 1)
    opt = Adam(net.parameters(), lr=0.1, fused=True)
    before = net.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        net(torch.ones(4, 3)).pow(2).mean().backward()
        opt.step()
    return int("torch._dynamo" not in sys.modules and not torch.equal(before, net.weight))


def torch_optim_steps():
    import sys

    net = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    before = net.weight.detach().clone()
    opt.zero_grad()
    net(torch.ones(4, 3)).pow(2).mean().backward()
    opt.step()
    return int("torch._dynamo" in sys.modules and not torch.equal(before, net.weight))


def sleep(tag):
    with open(f"pid-{tag}.txt", "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(1000)
'''


@pytest.fixture(scope="module")
def server():
    forks = sandbox.start_fork_server()
    if forks is None:
        pytest.skip("no fork server on this platform")
    yield forks
    forks.close()


@pytest.fixture
def use_server(server, monkeypatch):
    closed = sandbox.unreadable_for_others(os.path.dirname(os.__file__)) if os.geteuid() == 0 else None
    if closed:  # (.ci/run opens it) the sandbox users could not import from it: no forked zygotes
        pytest.skip(f"the standard library is closed to the sandbox users at {closed}")
    monkeypatch.setenv(forkserver.ENV, str(server.fd))
    return server


def _folder(tmp_path: Path, name: str = "sub") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "mod.py").write_text(SOURCE)
    return folder


def _strict(mode: str) -> bool:
    if mode == "strict" and os.geteuid() != 0:
        pytest.skip("strict mode's users need root")
    return mode == "strict"


def _grades_in_a_new_python(tmp_path: Path, name: str) -> None:
    sub = Submission(_folder(tmp_path, name))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
        assert not isinstance(sub.sandbox.proc, ForkedZygote)
    finally:
        sub.close()


def _value(res, key=""):
    leaf = res.output(key)
    return leaf.info.get("value") if leaf.array is None else leaf.array.item()


@pytest.mark.parametrize("mode", MODES)
def test_a_forked_zygote_answers_and_protects_like_a_new_python(use_server, tmp_path, mode, monkeypatch):
    strict = _strict(mode)
    folder = _folder(tmp_path)
    forked = Submission(folder, strict=strict)
    try:
        res = forked.call("mod", "add", torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
        assert res.ok and res.output("").array.tolist() == [4.0, 6.0]
        assert isinstance(forked.sandbox.proc, ForkedZygote)
        ident = forked.call("mod", "identity")
        assert ident.ok, ident.error
        forked_protections = (forked.sandbox.protections, forked.sandbox.missing)
    finally:
        forked.close()
    monkeypatch.delenv(forkserver.ENV)
    fresh = Submission(folder, strict=strict)
    try:
        assert fresh.call("mod", "add", torch.tensor([1.0]), torch.tensor([2.0])).ok
        assert not isinstance(fresh.sandbox.proc, ForkedZygote)
        assert forked_protections == (fresh.sandbox.protections, fresh.sandbox.missing)
        again = fresh.call("mod", "identity")
        assert again.ok
        for key in ("caps", "seccomp", "no_new_privs", "sockets", "groups", "interfaces"):
            assert _value(ident, key) == _value(again, key), key
    finally:
        fresh.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_forked_zygotes_child_is_confined(use_server, tmp_path, mode):
    """Its own user without any capability, seccomp, its own PID namespace (and network in
    strict mode), and no socket: nothing to reach the fork server with."""
    strict = _strict(mode)
    sub = Submission(_folder(tmp_path), strict=strict)
    try:
        res = sub.call("mod", "identity")
        assert res.ok, res.error
        assert isinstance(sub.sandbox.proc, ForkedZygote)
        assert _value(res, "sockets") == 0
        assert _value(res, "seccomp") == "2" and _value(res, "no_new_privs") == "1"
        if "its own PID namespace (other processes are invisible)" in " ".join(sub.sandbox.protections):
            assert _value(res, "max_pid") < 10  # the zygote, the probe, this child: nothing of the host
        if os.geteuid() == 0:
            assert _value(res, "uid") == _value(res, "euid") == sub.sandbox.lease.uid
            assert _value(res, "groups") == 0
            assert _value(res, "caps") == " ".join(["0000000000000000"] * 5)
        if strict:
            assert _value(res, "interfaces") == "lo"
        if sub.sandbox.missing == [] or "PID namespace" not in " ".join(sub.sandbox.missing):
            # System V objects die with the sandbox; /proc is mounted in its own mount namespace
            assert _value(res, "ipc") != os.readlink("/proc/self/ns/ipc")
            assert _value(res, "mnt") != os.readlink("/proc/self/ns/mnt")
    finally:
        sub.close()


def test_no_zygote_inherits_another_sandboxs_request(use_server, tmp_path):
    """The server forks a spare before each request and never reads one itself: the memory a
    zygote inherits holds no other sandbox's folder name (it is in that sandbox's request)."""
    alice = Submission(_folder(tmp_path, "alice"))
    bob = Submission(_folder(tmp_path, "bob"))
    try:
        assert alice.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok
        token = os.path.basename(alice.sandbox.dir)  # rlkit-sandbox-XXXXXXXX
        assert bob.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok  # forked after alice's request
        own = os.path.basename(bob.sandbox.dir)
        half = len(own) // 2
        found_own = bob.call("mod", "find", own[:half], own[half:], timeout=120)
        assert found_own.ok and _value(found_own) == 1  # the search works: bob's own request is there
        half = len(token) // 2
        found = bob.call("mod", "find", token[:half], token[half:], timeout=120)
        assert found.ok, found.error
        assert _value(found) == 0, "a zygote's memory holds another sandbox's request"
    finally:
        alice.close()
        bob.close()


def test_a_sandbox_dies_with_its_keeper(use_server, tmp_path):
    """The zygote is killed by the kernel when its keeper dies, and its children with it."""
    sub = Submission(_folder(tmp_path))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok
        keeper = sub.sandbox.proc
        assert isinstance(keeper, ForkedZygote)
        caller = threading.Thread(target=lambda: sub.call("mod", "sleep", "x", timeout=120))
        caller.start()
        pid_file = Path(sub.sandbox.work_dir, "pid-x.txt")
        end = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < end:
            time.sleep(0.05)
        ns_pid = int(pid_file.read_text())
        host = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ns_pid(int(p)) == ns_pid
                and _has_ancestor(int(p), keeper.pid)]
        assert len(host) == 1
        os.kill(keeper.pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while _alive(host[0]) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(host[0]), "a child outlived its keeper"
        caller.join(timeout=60)
        assert keeper.poll() is not None
    finally:
        sub.close()


def test_without_its_fork_server_a_sandbox_starts_a_new_python(tmp_path, monkeypatch):
    """A fork server that is gone (or a closed descriptor) costs speed, never a grade."""
    forks = sandbox.start_fork_server()
    if forks is None:
        pytest.skip("no fork server on this platform")
    monkeypatch.setenv(forkserver.ENV, str(forks.fd))
    os.killpg(forks.proc.pid, signal.SIGKILL)
    forks.proc.wait()
    try:
        _grades_in_a_new_python(tmp_path, "sub")
    finally:
        forks.close()
    monkeypatch.setenv(forkserver.ENV, "999")  # no such descriptor
    sub = Submission(_folder(tmp_path, "other"))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
    finally:
        sub.close()


def test_a_root_grader_without_setpriv_never_runs_student_code_as_root(tmp_path, monkeypatch, server):
    """The fork server drops to the sandbox's user itself; a new Python needs setpriv for that,
    and without it the grader refuses instead of running student code as root."""
    if os.geteuid() != 0:
        pytest.skip("only a root grader changes users")
    real_which = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "setpriv" else real_which(name, *a, **k))
    monkeypatch.setenv(forkserver.ENV, str(server.fd))
    sub = Submission(_folder(tmp_path))
    try:
        res = sub.call("mod", "identity")
        assert res.ok and isinstance(sub.sandbox.proc, ForkedZygote)
        assert _value(res, "uid") == sub.sandbox.lease.uid and _value(res, "caps") == " ".join(["0000000000000000"] * 5)
    finally:
        sub.close()
    monkeypatch.delenv(forkserver.ENV)
    sub = Submission(_folder(tmp_path, "other"))
    try:
        with pytest.raises(sandbox.GraderError, match="setpriv"):
            sub.call("mod", "identity")
    finally:
        sub.close()


CLOSED_PYTHON = r"""
set -e
lib=$(python_lib)
mkdir -p "$HOLD"
mount --bind "$lib" "$HOLD"
mount -t tmpfs -o mode=0700 tmpfs "$lib"   # closed to other users, like a virtualenv in a 0700 home
for entry in "$HOLD"/*; do
    name=$(basename "$entry")
    if [ -d "$entry" ]; then mkdir "$lib/$name"; else touch "$lib/$name"; fi
    mount --bind "$entry" "$lib/$name"
done
exec "$PY" "$SCRIPT" "$FOLDER"
"""

CLOSED_SCRIPT = r"""
import os, sys
from autograder import sandbox
from autograder.client import Submission
forks = sandbox.start_fork_server()
os.environ.update(forks.environ())
sub = Submission(sys.argv[1])
try:
    res = sub.call("mod", "add", 1, 2)
    print("RESULT", res.ok, type(sub.sandbox.proc).__name__)
except sandbox.GraderError as exc:
    print("GRADER_ERROR", str(exc)[:300].replace("\n", " "))
finally:
    sub.close()
    forks.close()
"""


def test_a_sandbox_user_who_cannot_read_the_servers_python_gets_a_new_one(tmp_path):
    """A root grader's sandbox users must import, as themselves, whatever the server did not
    preload. Where a folder of its ``sys.path`` is closed to them (here: the virtualenv's lib/,
    in a private mount namespace), the zygote says so, the sandbox starts a new Python, and the
    grade fails loudly; it never runs on with imports that fail later."""
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private mount namespace")
    lib = Path(sys.prefix) / "lib"
    root = Path(__file__).resolve().parent.parent
    folder = _folder(tmp_path)
    script = tmp_path / "closed.py"
    script.write_text(CLOSED_SCRIPT)
    shell = CLOSED_PYTHON.replace("$(python_lib)", str(lib))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", shell], cwd=root,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PY": sys.executable, "SCRIPT": str(script), "FOLDER": str(folder),
                               "HOLD": str(tmp_path / "hold"), "PYTHONPATH": str(root)})
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("RESULT", "GRADER_ERROR"))]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert lines[-1].startswith("GRADER_ERROR") and "did not start" in lines[-1], lines


def test_a_zygote_that_cannot_set_itself_up_gives_way_to_a_new_python(use_server, tmp_path, monkeypatch):
    """A forked zygote that fails before it is set up (here: a config it cannot open) is
    reported by its keeper; that sandbox starts a new Python."""
    real = forkserver.fork_zygote

    def broken(server, request, *args, **kwargs):
        return real(server, {**request, "config": "/nonexistent/config.json"}, *args, **kwargs)

    monkeypatch.setattr(forkserver, "fork_zygote", broken)
    _grades_in_a_new_python(tmp_path, "sub")


def test_a_forked_zygote_that_never_says_ready_gives_way_to_a_new_python(use_server, tmp_path, monkeypatch):
    """A forked zygote set up but silent costs one failed start: that sandbox and every later
    one of the process start a new Python (a broken fork path never fails a grade)."""
    monkeypatch.setattr(forkserver, "_gave_up", [])
    real = sandbox.Sandbox._read_frame
    silenced = []

    def silent(self, deadline):
        if isinstance(self.proc, ForkedZygote) and not silenced:
            silenced.append(self.proc.pid)
            raise EOFError
        return real(self, deadline)

    monkeypatch.setattr(sandbox.Sandbox, "_read_frame", silent)
    sub = Submission(_folder(tmp_path))
    other = Submission(_folder(tmp_path, "other"))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
        assert silenced and not isinstance(sub.sandbox.proc, ForkedZygote)
        assert forkserver._gave_up
        assert other.call("mod", "add", torch.tensor(1.0), torch.tensor(2.0)).ok
        assert not isinstance(other.sandbox.proc, ForkedZygote)
    finally:
        sub.close()
        other.close()


NOBODY = r"""
import os, sys, torch
from autograder import sandbox
from autograder.client import Submission
from autograder.forkserver import ForkedZygote
forks = sandbox.start_fork_server()
os.environ.update(forks.environ())
sub = Submission(sys.argv[1])
res = sub.call("mod", "identity")
print(isinstance(sub.sandbox.proc, ForkedZygote), res.ok, res.output("max_pid").array.item() if res.ok else res.error,
      "its own PID namespace (other processes are invisible)" in sub.sandbox.protections, sep="|")
sub.close()
forks.close()
"""


def test_a_grader_that_is_not_root_forks_zygotes_in_a_user_namespace(tmp_path):
    """Not root (a laptop): the keeper takes a user namespace first, as `unshare --map-root-user`,
    and the sandbox still gets its own PID namespace."""
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to become another user")
    if sandbox.unreadable_for_others(sys.prefix) or sandbox.unreadable_for_others(os.path.dirname(os.__file__)):
        pytest.skip("the Python installation is closed to other users")
    root = Path(__file__).resolve().parent.parent
    if sandbox.unreadable_for_others(root):
        pytest.skip("the kit is closed to other users")
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="rlkit-nobody-"))  # (pytest's tmp_path is closed to other users)
    try:
        os.chmod(home, 0o777)
        folder = _folder(home)
        script = home / "nobody.py"
        script.write_text(NOBODY)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               str(script), str(folder)], cwd=root, capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(root)})
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if not sandbox.namespace_prefix(network=False):
        pytest.skip("no user namespaces here")
    forked, ok, max_pid, own_ns = proc.stdout.strip().splitlines()[-1].split("|")
    assert (forked, ok, own_ns) == ("True", "True", "True"), proc.stdout + proc.stderr
    assert float(max_pid) < 10


def test_a_learning_run_goes_on_in_a_second_sandbox_beside_the_checks(use_server, tmp_path, monkeypatch):
    """harness.in_background: the calls run at once in a twin sandbox (another folder, closed
    afterwards) and the test that asks gets their results; without a fork server nothing starts
    early and the calls run in the submission's own sandbox when asked."""
    from autograder import harness
    from autograder.harness import Call

    sub = Submission(_folder(tmp_path))
    try:
        assert sub.call("mod", "add", torch.tensor(1.0), torch.tensor(1.0)).ok
        harness.in_background(sub, "where", "mod", "where", [Call()], 20)
        assert (id(sub), "where") in harness._background
        (res,) = harness.results(sub, "where", "mod", "where", [Call()], 20)
        twin_dir = _value(res)
        assert res.ok and twin_dir != sub.sandbox.work_dir and Path(twin_dir).name == "work"
        end = time.monotonic() + 10
        while Path(twin_dir).exists() and time.monotonic() < end:
            time.sleep(0.05)
        assert not Path(twin_dir).exists(), "the twin sandbox was not closed"
        monkeypatch.delenv(forkserver.ENV)
        harness.in_background(sub, "where", "mod", "where", [Call()], 20)
        assert (id(sub), "where") not in harness._background
        (res,) = harness.results(sub, "where", "mod", "where", [Call()], 20)
        assert res.ok and _value(res) == sub.sandbox.work_dir
    finally:
        sub.close()


def test_a_sandbox_user_id_is_leased_alone_and_its_lock_file_goes_with_it(monkeypatch):
    """Two live sandboxes never share a user id, and a released id leaves no lock file behind
    (a red team counted 9,342 of them)."""
    if os.geteuid() != 0:
        pytest.skip("only a root grader leases user ids (its lock folder is root's, in /run)")
    draws = iter([7, 7, 8])
    monkeypatch.setattr(sandbox.random, "randrange", lambda n: next(draws))
    first = sandbox.UidLease()
    second = sandbox.UidLease()  # 7 is taken: it draws again
    try:
        assert (first.uid, second.uid) == (sandbox.UID_BASE + 7, sandbox.UID_BASE + 8)
        assert (sandbox.UID_LOCKS / str(first.uid)).exists()
    finally:
        first.release()
        second.release()
    assert not (sandbox.UID_LOCKS / str(first.uid)).exists()
    assert not (sandbox.UID_LOCKS / str(second.uid)).exists()


def test_a_new_lease_removes_lock_files_that_killed_graders_left_behind(monkeypatch, tmp_path):
    """A grader killed with SIGKILL leaves its lock files (9,585 here after a few weeks of tests): each
    new lease removes a few that nobody holds, and never one a live sandbox holds."""
    import fcntl

    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    monkeypatch.setattr(sandbox, "UID_LOCKS", locks)
    stale = [locks / str(sandbox.UID_BASE + i) for i in (1, 2)]
    for path in stale:
        path.touch()
    held = locks / str(sandbox.UID_BASE + 3)
    holder = os.open(held, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another grader's live sandbox
    monkeypatch.setattr(sandbox.random, "randrange", lambda n: 9)
    lease = sandbox.UidLease()
    try:
        assert lease.uid == sandbox.UID_BASE + 9
        assert [p.exists() for p in stale] == [False, False]
        assert held.exists()
        assert (locks / str(lease.uid)).exists()
    finally:
        lease.release()
        os.close(holder)
    assert sorted(p.name for p in locks.iterdir()) == [held.name]


def test_a_lock_folder_someone_else_could_change_is_refused_not_used(monkeypatch, tmp_path):
    """Attack: another local user puts a link at the lock folder's place in /tmp (it points at a
    folder of root's), or a folder anyone can write. Before, the grader followed the link: it
    created its lock files there and, since f56753d, removed that folder's unlocked files."""
    victim = tmp_path / "victim"
    victim.mkdir()
    precious = victim / str(sandbox.UID_BASE + 1)
    precious.write_text("root's file")
    link = tmp_path / "locks"
    link.symlink_to(victim)
    monkeypatch.setattr(sandbox, "UID_LOCKS", link)
    monkeypatch.setattr(sandbox.random, "randrange", lambda n: 9)
    with pytest.raises(sandbox.GraderError, match="refusing to grade: .* is not a directory"):
        sandbox.UidLease()
    assert precious.read_text() == "root's file"
    assert sorted(p.name for p in victim.iterdir()) == [precious.name]

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could remove or swap the lock files in it
    monkeypatch.setattr(sandbox, "UID_LOCKS", shared)
    with pytest.raises(sandbox.GraderError, match="that no one else can use"):
        sandbox.UidLease()
    assert list(shared.iterdir()) == []


def test_two_graders_with_different_temporary_folders_never_share_a_user_id(tmp_path):
    """Attack (a red team's): the lock folder used to be in each process's TMPDIR, so two root graders
    with different temporary folders (a per-job TMPDIR, systemd's PrivateTmp) locked in two folders
    and could lease the same user id at once. Here only one id exists: the second must be refused."""
    import subprocess
    import sys
    import textwrap

    if os.geteuid() != 0:
        pytest.skip("only a root grader leases user ids")
    code = textwrap.dedent("""
        import sys
        from autograder import sandbox
        sandbox.UID_BASE, sandbox.UID_COUNT = int(sys.argv[1]), 1
        try:
            lease = sandbox.UidLease()
        except sandbox.GraderError:
            print("refused", flush=True)
            sys.exit(0)
        print("leased", flush=True)
        sys.stdin.read()  # held until the test closes stdin
        lease.release()
    """)
    root = Path(sandbox.__file__).resolve().parent.parent
    base = str(sandbox.UID_BASE + sandbox.UID_COUNT + os.getpid())  # outside the range real graders draw from
    procs, said = [], []
    try:
        for name in ("a", "b"):
            tmp = tmp_path / name
            tmp.mkdir()
            proc = subprocess.Popen([sys.executable, "-c", code, base], cwd=root, text=True,
                                    env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(root)},
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            procs.append(proc)
            said.append(proc.stdout.readline().strip())
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=60)
    assert said == ["leased", "refused"]


@pytest.mark.parametrize("mode", MODES)
def test_a_sandbox_trains_with_the_kits_adam_without_importing_torch_dynamo(use_server, tmp_path, mode):
    """The fork server no longer warms torch._dynamo (1.3 CPU-seconds per grade): nothing the kit
    runs in a sandbox needs it, because its training loops step ``common.adam.Adam``, which
    torch.optim's lazy import never reaches. A forked zygote's child trains a small network. A
    submission's own torch.optim optimizer still works: its child imports torch._dynamo under
    the sandbox's confinement (no new process, its own limits)."""
    sub = Submission(_folder(tmp_path), strict=_strict(mode))
    try:
        res = sub.call("mod", "adam_steps_without_dynamo")
        assert res.ok and isinstance(sub.sandbox.proc, ForkedZygote), res
        assert _value(res) == 1
        own = sub.call("mod", "torch_optim_steps")
        assert own.ok, own.error
        assert _value(own) == 1
    finally:
        sub.close()


def test_the_runner_shares_one_fork_server_with_its_suites(tmp_path):
    from autograder import runner

    env, fds = runner._fork_server()
    assert forkserver.ENV in env and fds and int(env[forkserver.ENV]) == fds[0]
    assert runner._fork_server() == (env, fds)  # one per process, not one per suite


def _stat_field(pid: int, index: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[index])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ns_pid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _has_ancestor(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = _stat_field(pid, 1)
        except (OSError, ValueError, IndexError):
            return False
    return False


def _anon_huge_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0


def test_the_processes_that_fork_keep_their_heap_on_huge_pages(server):
    """Each fork copies the page table of the forking process's heap (about 150 MB after ``import
    torch``) and each exit tears the child's down: on 2 MB pages both cost a fraction. glibc's malloc
    asks for them when the environment says so (``sandbox.MALLOC_HUGE_PAGES``)."""
    from autograder import runner

    name, value = sandbox.MALLOC_HUGE_PAGES
    assert runner._suite_env().get(name) == os.environ.get(name, value)  # the suite servers (a grader's own
    # GLIBC_TUNABLES, if it has one, is kept)
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    if not thp.exists() or "[never]" in thp.read_text():
        pytest.skip("the kernel offers no transparent huge pages")
    if not glibc.startswith("glibc ") or tuple(map(int, glibc.split()[1].split(".")[:2])) < (2, 35):
        pytest.skip(f"{glibc or 'this libc'} has no glibc.malloc.hugetlb tunable")
    deadline = time.monotonic() + 30
    while _anon_huge_kb(server.proc.pid) == 0 and time.monotonic() < deadline:  # (still importing torch)
        time.sleep(0.2)
    assert _anon_huge_kb(server.proc.pid) >= 16 << 10  # kB: most of its heap, not a stray page
