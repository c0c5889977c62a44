# rlkit: every target builds the virtualenv it needs on a fresh machine.
#   make grade                      grade assignments/ (your work)
#   make grade SUBMISSION=dir       grade any folder holding ex*_*.py
#   make test                       the kit's own test suite (what CI runs)

PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
SUBMISSION  ?= assignments
DEVICE      ?= cpu
IMPL        ?= assignments
ARGS        ?=
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.rlkit-installed
BENCH_STAMP := $(VENV)/.rlkit-bench-installed

.PHONY: record student-kit help venv grade grade-all test test-fast assignments notebooks release collect autograde \
        feedback export gradescope bench grade-bench seeds ppo gae curves rlhf clean gpu-check

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'
	@echo "  other targets: assignments notebooks release collect autograde feedback export"
	@echo "                 gradescope grade-all bench grade-bench seeds ppo gae curves rlhf clean gpu-check"
	@echo "                 record student-kit"

venv: $(STAMP)

# torch first and pinned, then the rest. The pin does not stop Linux from pulling the CUDA build
# (GBs of nvidia-* wheels): tools/torch_index.py takes the CPU wheel index when no NVIDIA GPU is
# present (no nvidia-smi), the default (CUDA) build when one is. TORCH_INDEX=cpu|cuda|default|URL
# overrides it. An unreachable index fails fast (pip --timeout 5 --retries 0), then a plain
# pinned install from the configured index follows.
TORCH_INDEX ?= auto
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) tools/torch_index.py --spec "$(TORCH_SPEC)" --index "$(TORCH_INDEX)"
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q "stable-baselines3==2.7.1"
	touch $(BENCH_STAMP)

grade: venv
	$(PY) -m autograder $(SUBMISSION) --device $(DEVICE) $(ARGS)

# LMS=canvas_export.csv also writes grades/lms_grades.csv for the gradebook import (tools/lms_csv.py)
grade-all: venv
	@test -n "$(SUBMISSIONS)" || (echo "usage: make grade-all SUBMISSIONS=dir" && exit 2)
	$(PY) -m autograder.batch $(SUBMISSIONS) $(ARGS)
	@if [ -n "$(LMS)" ]; then $(PY) -m tools.lms_csv grades/grades.csv --lms "$(LMS)" --out grades/lms_grades.csv; fi

test: venv
	$(PY) -m pytest -q --durations=15 tests $(ARGS)

assignments: venv
	$(PY) -m tools.make_assignments

notebooks: venv
	$(PY) -m tools.make_notebooks

bench: $(BENCH_STAMP)
	$(PY) -m scripts.bench $(ARGS)

# grading time of a correct submission: full grade, each exercise (with its breakdown), batch
# throughput in strict mode; writes docs/GRADE_BENCH.md (scripts/grade_bench.py); ARGS="--baseline DIR"
# measures an earlier checkout beside it, run for run
grade-bench: venv
	$(PY) -m scripts.grade_bench $(ARGS)

record: venv
	$(PY) -m tools.record_answers $(ARGS)

# build/student-kit/ and build/student-kit.zip: stubs, grader, recorded answers, no solution
# (docs/INSTRUCTORS.md, "Handing out the student kit"); refuses a dirty or stale tree
student-kit: venv
	$(PY) -m tools.make_student_kit $(ARGS)

seeds: venv
	$(PY) -m scripts.seeds $(ARGS)

# the chapter's demos (demos/): IMPL=assignments (the default) runs your functions, IMPL=solutions the reference
ppo: venv
	$(PY) -m demos.ppo_cartpole --impl $(IMPL) $(ARGS)

gae: venv
	$(PY) -m demos.gae_visualizer --impl $(IMPL) $(ARGS)

curves: venv
	$(PY) -m scripts.curves $(ARGS)

rlhf: venv
	$(PY) -m demos.rlhf_pipeline --impl $(IMPL) $(ARGS)

# on a machine with an NVIDIA GPU (exit 3 at once elsewhere): grades, CPU/CUDA differences, training and
# scripts on CUDA, into build/gpu-check/. ARGS=--install first installs the CUDA build of the pinned torch.
gpu-check: venv
	$(PY) -m scripts.gpu_check $(ARGS)

clean:
	rm -rf plots runs build .pytest_cache

# ---------------------------------------------------------------- nbgrader course (docs/INSTRUCTORS.md)
#   make release     generate_assignment for every exercise, release it to the exchange,
#                    and build build/student_bundle/ (+ .zip): released notebooks + common/
#   make collect     nbgrader collect from the exchange;  make collect ZIPS=dir  uses zip_collect
#                    on dir/<exercise>/ (files <student>__<exercise>.ipynb or <student>.zip)
#   make autograde   nbgrader autograde (ARGS=--force re-grades what was graded before)
#   make feedback    nbgrader generate_feedback (HTML per student and exercise)
#   make release-feedback   nbgrader release_feedback: the HTML back through the exchange (exchange
#                    students; the others are listed, to send by hand), exercise by exercise
#   make export      grades CSV: build/grades/notebook_grades.csv (LMS=canvas_export.csv: also
#                    build/grades/lms_grades.csv, the LMS gradebook import)
#   make grade-notebooks   the isolated cross-check: every submitted notebook through make grade's sandbox
COURSE       ?= course
ZIPS         ?=
NB_EXERCISES  = $(notdir $(patsubst %/,%,$(wildcard $(COURSE)/source/ex*_*/)))
NBGRADER      = cd $(COURSE) && $(abspath $(PY)) -m nbgrader

.PHONY: grade-notebooks release-feedback

release: venv
	$(PY) -m tools.make_notebooks --check
	$(NBGRADER) generate_assignment "*" --force $(ARGS)
	$(PY) -m tools.make_notebooks --common-zip $(COURSE)/release
	for ex in $(NB_EXERCISES); do ($(NBGRADER) release_assignment $$ex --force) || exit 1; done
	$(PY) -m tools.make_notebooks --bundle $(COURSE)/release --out build/student_bundle

collect: venv
ifeq ($(ZIPS),)
	for ex in $(NB_EXERCISES); do ($(NBGRADER) collect $$ex --update $(ARGS)) || exit 1; done
else
	for ex in $(NB_EXERCISES); do \
	  if [ -d "$(ZIPS)/$$ex" ]; then \
	    rm -rf $(COURSE)/downloaded/$$ex && mkdir -p $(COURSE)/downloaded/$$ex/archive && \
	    cp -R "$(ZIPS)/$$ex"/. $(COURSE)/downloaded/$$ex/archive/ && \
	    ($(NBGRADER) zip_collect $$ex --force $(ARGS)) || exit 1; \
	  fi; \
	done
endif

autograde: venv
	$(NBGRADER) autograde "*" $(ARGS)

feedback: venv
	$(NBGRADER) generate_feedback "*" $(ARGS)
	@echo "feedback: $(COURSE)/feedback/<student>/<exercise>/<exercise>.html (make release-feedback: to the exchange)"

release-feedback: venv
	$(PY) -m tools.release_feedback --course $(COURSE) $(ARGS)

export: venv
	mkdir -p build/grades
	$(NBGRADER) export --to $(CURDIR)/build/grades/notebook_grades.csv $(ARGS)
	@if [ -n "$(LMS)" ]; then $(PY) -m tools.lms_csv build/grades/notebook_grades.csv --lms "$(LMS)" \
	  --out build/grades/lms_grades.csv; fi

grade-notebooks: venv
	$(PY) -m tools.make_notebooks --grade-submitted $(COURSE)/submitted --out build/notebook_grades $(ARGS)

# ---- Gradescope (instructors): build/gradescope.zip = setup.sh + run_autograder + the kit
#   make gradescope   upload build/gradescope.zip as the autograder; it holds the hidden
#                     suites and solutions, so it is never given to students
gradescope: venv
	$(PY) -m tools.make_gradescope --out build/gradescope.zip --torch-spec "$(TORCH_SPEC)"

# ---- make gradescope-check (instructors, as root; not in CI): build/gradescope.zip's setup.sh and
#      run_autograder in a clean debootstrap'd Debian root (chroot), on the solutions, the stubs and
#      a notebook upload; results.json checked against Gradescope's format (docs/INSTRUCTORS.md)
.PHONY: gradescope-check
gradescope-check: gradescope
	$(PY) -m tools.gradescope_check --zip build/gradescope.zip $(ARGS)
