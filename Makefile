# Two commands do everything on a fresh clone:
#   make report   - set up, build the demo corpus, run notebooks 01-06, render reports/index.html
#   make test     - set up, lint, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra papermill parameters for the whole run, e.g. make report PARAMS="epochs=5 demo_size=tiny"
PARAMS ?=
NAME ?= demo
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: setup report test lint format lab bench notebooks demo clean-venv lock

setup: $(STAMP)

# One resolver pass over the pinned lock, then the project itself without deps.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
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

test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lib tests notebooks
	$(BIN)/ruff format --check lib tests notebooks

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
