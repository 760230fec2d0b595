# `make run` and `make test` are all a new user needs; `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands in dvc.yaml call `python`: make it the venv's without asking for `activate`.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install run test test-full lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# constraints.txt pins every package (torch==2.13.0 among them) so runs are reproducible.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev,clearml]'
	touch $@

install: $(STAMP)  ## create .venv and install the project (only when missing or outdated)

run: $(STAMP)  ## run the pipeline (dvc repro) and print its metrics
	dvc repro
	dvc metrics show

test: $(STAMP)  ## lint, type-check and run the fast tests
	ruff check .
	ruff format --check .
	mypy
	pytest

test-full: $(STAMP)  ## all tests, the slow end-to-end ones included
	pytest -m ''

lint: $(STAMP)  ## format the code and fix what ruff can
	ruff format .
	ruff check --fix .

clean:  ## remove the virtual environment and tool caches (not DVC outputs)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
