# The two Quickstart commands. Both set up ./.venv first (scripts/setup.sh; it is a no-op when done).
PROFILE ?=
VENV := .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup run test lint

setup:
	@bash scripts/setup.sh

run: setup
	$(BIN)/lewm-bench run --suite all $(if $(PROFILE),--profile $(PROFILE))

# Test files run in parallel, one file per worker (its module fixtures built once), up to 4 workers.
test: setup
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

lint: setup
	$(BIN)/ruff check .
