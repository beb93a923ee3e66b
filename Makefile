# Everyday targets. `make setup` is idempotent (./setup.sh).
.PHONY: setup test test-all lint format smoke run perf clean

setup:
	./setup.sh

test: setup
	.venv/bin/python -m pytest

test-all: setup  ## including tests marked slow
	.venv/bin/python -m pytest -m ""

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

smoke: setup
	.venv/bin/bench run --all --profile smoke

run: setup
	.venv/bin/bench run --all

perf: setup
	.venv/bin/bench perf

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
