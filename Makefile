# Two commands do everything on a fresh machine: `make meta` and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
BIN := $(VENV)/bin

.PHONY: meta test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# meta's modules compiled to bytecode, as an installed package's are: the editable install leaves them as source, and
# where PYTHONDONTWRITEBYTECODE is set Python compiles ~100 modules again on every run (0.1-0.25 s of CPU before any
# work). Only changed modules are compiled again; __pycache__ is ignored by git.
BYTECODE = $(BIN)/python -m compileall -q meta

meta: $(STAMP)
	$(BYTECODE)
	$(BIN)/meta run

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BYTECODE)
	$(BIN)/python tests/benchmarks/bench_pool.py
	$(BIN)/python tests/benchmarks/bench_run.py

clean:
	rm -rf $(VENV)
