"""The sandbox's child side: the only grader code that ever shares a process with student code.

The sandbox (``sandbox.py``) copies this package into the kit part of each
sandbox as ``rlkit_worker/`` and starts ``python -I KIT/rlkit_worker
CONFIG.json`` (``__main__.py``). That process is a *zygote*
(``zygote.py``): it imports torch, numpy, gymnasium and ``common`` once, then
for every request from the parent it forks a child (``main.py``) that

1. becomes its own session (the parent kills the whole group on timeout),
2. closes the protocol pipes, sends stdout/stderr to an in-memory file,
3. sets resource limits, then asks the kernel for Landlock and seccomp and
   installs an audit hook (``confine.py``),
4. imports the student's module from the submission copy (``loading.py``),
5. runs each case, builds its arguments and flattens its result to plain data
   (``values.py``), and streams one frame per case back (``wire.py``).

Nothing in here is trusted by the parent: results are plain arrays and JSON,
and the parent checks and compares them. The child holds no secret (no
reference output ever reaches it), so a compromised child can only send
wrong answers. These modules import only each other, the standard library,
numpy, torch, gymnasium and ``common``: never the rest of ``autograder``.
"""
