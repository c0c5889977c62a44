# rlkit: every target builds the virtualenv it needs on a fresh machine.
#   make grade                      grade assignments/ (your work)
#   make grade SUBMISSION=dir       grade any folder holding ex*_*.py
#   make test                       the kit's own test suite (what CI runs)

PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
SUBMISSION  ?= assignments
DEVICE      ?= cpu
ARGS        ?=
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.rlkit-installed
BENCH_STAMP := $(VENV)/.rlkit-bench-installed

.PHONY: help venv grade grade-all test test-fast assignments notebooks release collect autograde \
        feedback export gradescope bench seeds ppo gae curves rlhf clean

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'
	@echo "  other targets: assignments notebooks release collect autograde feedback export"
	@echo "                 gradescope grade-all bench seeds ppo gae curves rlhf clean"

venv: $(STAMP)

# torch first and pinned (an unpinned torch would pull GBs of CUDA wheels), then the rest.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q "stable-baselines3==2.7.1"
	touch $(BENCH_STAMP)

grade: venv
	$(PY) -m autograder $(SUBMISSION) --device $(DEVICE) $(ARGS)

grade-all: venv
	@test -n "$(SUBMISSIONS)" || (echo "usage: make grade-all SUBMISSIONS=dir" && exit 2)
	$(PY) -m autograder.batch $(SUBMISSIONS) $(ARGS)

test: venv
	$(PY) -m pytest -q tests $(ARGS)

assignments: venv
	$(PY) -m tools.make_assignments

notebooks: venv
	$(PY) -m tools.make_notebooks

bench: $(BENCH_STAMP)
	$(PY) -m scripts.bench $(ARGS)

seeds: venv
	$(PY) -m scripts.seeds $(ARGS)

ppo: venv
	$(PY) -m solutions.ppo_cartpole $(ARGS)

gae: venv
	$(PY) -m solutions.gae_visualizer $(ARGS)

curves: venv
	$(PY) -m scripts.curves $(ARGS)

rlhf: venv
	$(PY) -m solutions.rlhf_pipeline $(ARGS)

clean:
	rm -rf plots runs build .pytest_cache
