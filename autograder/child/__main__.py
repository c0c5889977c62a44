"""``python -I KIT/rlkit_worker CONFIG.json``: how the sandbox starts the zygote (``sandbox.py``).

(``python -I DIR/rlkit_worker --fork-server FD`` starts the fork server instead: ``forkserver.py``.)

Run as a folder, this package is not yet a package: Python puts the folder
itself first on ``sys.path``. Its parent (the sandbox's ``kit/``) takes that
place while the package is imported under its folder's name, so its modules'
relative imports work; then the entry goes, and :func:`zygote.main` puts the
kit first on ``sys.path`` (for ``common``), as the only path of the sandbox's.
"""
import importlib
import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    if not __package__ and sys.path and os.path.realpath(sys.path[0]) == os.path.realpath(here):
        sys.path[0] = os.path.dirname(here)
        package = os.path.basename(here)
        serve_forks = sys.argv[1:2] == ["--fork-server"]
        entry = importlib.import_module(f"{package}.{'forkserver' if serve_forks else 'zygote'}")
        del sys.path[0]
    else:  # python -m autograder.child (not how the sandbox starts it)
        serve_forks = False
        entry = importlib.import_module(f"{__package__}.zygote")
    if serve_forks:
        entry.main(int(sys.argv[2]))
    else:
        entry.main()
