# `make demo` and `make test` work on a fresh clone: they (re)create the virtual environment
# whenever it is missing or older than pyproject.toml, then run.
# bash: `time` reports how long the test targets took (wall and CPU)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medbench-installed

.PHONY: demo ui test test-fast lint bench venv clean showcase

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/medbench demo

# The MLflow UI on ./mlflow.db (the demo's store); options through UI_ARGS, e.g. when port 5000
# is taken: make ui UI_ARGS="--port 5001"
ui: $(STAMP)
	$(VENV)/bin/medbench ui $(UI_ARGS)

# The committed showcase report (reports/demo): the demo from a clean cache and a new store,
# in a temporary folder, so that it is what a fresh clone produces on this machine.
showcase: $(STAMP)
	rm -rf reports/demo
	tmp=$$(mktemp -d) && cd $$tmp && MEDBENCH_CACHE_DIR=$$tmp/cache \
	  $(CURDIR)/$(VENV)/bin/medbench demo --set report.out=$(CURDIR)/reports/demo && rm -rf $$tmp

# The whole suite, end-to-end tests included, in TEST_WORKERS processes (pytest-xdist; a test
# file stays in one process, so its module fixtures are built once): many tests wait on the
# processes they start, so two workers use two cores. It ends with how long it took (real: wall
# time, user + sys: CPU time). TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	time $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The unit tests, in one process: no end-to-end grids or reports (markers slow, e2e) and no
# tests that start medbench, MLflow or worker processes (marker subprocess); what to run while
# you work (about a minute).
test-fast: $(STAMP)
	time $(PY) -m pytest -m "not slow and not subprocess and not e2e"

lint: $(STAMP)
	$(VENV)/bin/ruff check medbench tests
	$(VENV)/bin/ruff format --check medbench tests

bench: $(STAMP)
	$(VENV)/bin/medbench bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
