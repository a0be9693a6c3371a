# Two commands do everything on a fresh clone:
#   make report   - set up, build the demo corpus, run notebooks 01-06, render reports/index.html
#   make test     - set up, lint, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra notebook parameters for the whole run, e.g. make report PARAMS="corpus=demo-tiny epochs=5"
# (README's parameter table: `wav2kp config --markdown`)
PARAMS ?=
NAME ?= demo
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: setup report report-grid model-grid results-docs full-protocol test lint format lab bench notebooks demo clean-venv lock

setup: $(STAMP)

# One resolver pass over the pinned lock, then the project itself without deps. pip
# compiles every installed module to bytecode one file at a time; compileall does the same
# on every core (a few files meant for newer Pythons fail to compile, ignored as pip does).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -r requirements.lock
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib > /dev/null || true
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve requirements.in into requirements.lock (maintainers only).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q -r requirements.in
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^wav2kp' > requirements.lock
	rm -rf .venv-lock

report: $(STAMP)
	$(BIN)/wav2kp report --name $(NAME) $(foreach p,$(PARAMS),--param $(p))

# The real-speech run: 400 sentences of GRID speaker 1 (CC BY 4.0, Cooke, Barker,
# Cunningham & Shao 2006), read from GRID_DIR (never copied into the repository).
GRID_DIR ?= ../shared/grid-s1
# The `grid` profile (wav2kp.config.PROFILES) is the run: GRID's model (the default with
# the levers `wav2kp cv --study mouth` keeps: GRID_LEVERS) on 3 seeds beside the
# baselines; the original replica and the ablation are the demo run's. Both targets train
# the same model into data/models/grid/default/seed-N, which `wav2kp predict` picks first.
report-grid: $(STAMP)
	$(BIN)/wav2kp report --name grid --param profile=grid --param input_dir=$(GRID_DIR) $(foreach p,$(PARAMS),--param $(p))

# A real-speech model so that `wav2kp predict` needs no training first (one seed).
model-grid: $(STAMP)
	$(BIN)/wav2kp extract $(GRID_DIR) --corpus grid
	$(BIN)/wav2kp train --profile grid --set seeds=0

# The committed result pages under docs/results/, regenerated from the committed tables
# under results/ (a test checks that they agree; the tables' own commands are in the pages).
results-docs: $(STAMP)
	$(BIN)/python -m wav2kp.studies pages
	$(BIN)/wav2kp results results/demo.json --update-readme README.md
	$(BIN)/wav2kp config --update-readme README.md

# The full protocol behind README's results table (hours on 2 cores; run after `make
# report`, which builds the corpus; finished work is reused): every model on 3 seeds with
# the replica trained to its validation plateau, the test-split evaluation, the README
# block regenerated from the results file, and the cross-validation studies notebook 04 shows.
full-protocol: $(STAMP)
	$(BIN)/wav2kp train --profile full
	$(BIN)/wav2kp evaluate --checkpoints data/models/demo/full/original data/models/demo/full/default --out reports/full-protocol --profile full
	$(BIN)/wav2kp results reports/full-protocol --save results/demo.json --update-readme README.md
	$(BIN)/wav2kp cv --study design --out results/demo-cv-design
	$(BIN)/wav2kp cv --study budget --out results/demo-cv-budget

test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# lint-imports: the layers of docs/architecture.md's stage map (pyproject's [tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check lib tests notebooks
	$(BIN)/ruff format --check lib tests notebooks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix lib tests notebooks
	$(BIN)/ruff format lib tests notebooks

# JupyterLab with the jupytext pairing active: double-clicking a py:percent script opens it
# as a notebook (jupyter-config/labconfig sets jupytext's viewer as the default; your own
# JupyterLab settings still win). Extra options: make lab LAB_ARGS="--no-browser --port=8899"
lab: $(STAMP) notebooks
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab --notebook-dir=. $(LAB_ARGS)

notebooks: $(STAMP)
	$(BIN)/jupytext --sync notebooks/[0-9]*.py

demo: $(STAMP)
	$(BIN)/wav2kp demo

bench: $(STAMP)
	$(BIN)/wav2kp bench all

clean-venv:
	rm -rf $(VENV)
