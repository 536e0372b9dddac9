# `make demo` and `make test` each create .venv and install the project on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint dist min-versions clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/pip-adapter demo --overwrite

# two processes (the two cores CI has); each test file stays on one of them, so a module's
# fixtures (exported graphs, trained runs) are built once
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# the sdist and the wheel, in dist/
dist: $(BIN)/.installed
	$(BIN)/python -m build --outdir dist .

# every dependency at its floor in a new environment (minutes; downloads into .cache/wheelhouse)
min-versions: $(BIN)/.installed
	$(BIN)/python -m pytest -q -rP -m min_versions tests/test_min_versions.py

clean:
	rm -rf $(VENV) .cache *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist
