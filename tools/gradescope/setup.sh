#!/usr/bin/env bash
# Gradescope image build (runs once, as root, with this zip unpacked in
# /autograder/source). Built by `make gradescope`; @TORCH_SPEC@ comes from the Makefile.
#
# The kit is NOT pip-installed: it runs from /autograder/source (PYTHONPATH).
# The sandboxed worker may read the virtualenv (it imports torch from there),
# so a copy of solutions/ or autograder/ inside site-packages would be
# readable by student code; /autograder/source is not.
set -euo pipefail
SOURCE=/autograder/source
VENV=/autograder/venv

export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null; then
    apt-get update -q
    # python3-venv for the virtualenv; util-linux provides unshare and setpriv (strict sandbox)
    apt-get install -y -q python3 python3-venv python3-pip util-linux
fi

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned, from the CPU wheel index (an unpinned torch pulls GBs of CUDA wheels)
"$VENV/bin/python" -m pip install -q "@TORCH_SPEC@" --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
"$VENV/bin/python" -m pip install -q -r "$SOURCE/requirements.txt"
# smoke test: the kit imports and its suites are where the grader looks for them
cd "$SOURCE" && PYTHONPATH="$SOURCE" "$VENV/bin/python" -c "from autograder.runner import available_exercises as a; print('exercises:', a())"
chmod +x "$SOURCE/run_autograder"
