# Two commands on a fresh Debian machine with Python 3.11: `make run`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# locust (make loadtest, and the suite's load test) lives in a virtual environment of its own.
LOAD_VENV  ?= .venv-load
LOAD_STAMP := $(LOAD_VENV)/.installed-$(shell cat requirements-load.txt | cksum | cut -d' ' -f1)
# Debian ships venv's pip (ensurepip) in its own package: python3.X-venv.
PYVENV := $(shell $(PYTHON) -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])' 2>/dev/null)
PKGS   := PYTHON=$(PYTHON) scripts/system-packages

.PHONY: install run test test-topologies fuzz bench system-deps clean loadtest

$(STAMP):
	@$(PKGS) "the Python virtual environment" py:ensurepip:$(PYVENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,otel]'
	rm -f $(VENV)/.installed-* && touch $@

$(LOAD_STAMP): | $(STAMP)
	$(PYTHON) -m venv $(LOAD_VENV)
	$(LOAD_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOAD_VENV)/bin/python -m pip install --quiet -r requirements-load.txt
	rm -f $(LOAD_VENV)/.installed-* && touch $@

install: $(STAMP) $(LOAD_STAMP)

# Programs the tests use: a redis-server they start themselves (never the machine's running
# one), redis-cli (which forms their Redis Cluster) and openssl (which makes the TLS Redis's
# certificates), promtool (Debian's prometheus package) to check /metrics and the alert rules, and
# Debian's chromium, which Playwright drives for tests/browser/ (no `playwright install`).
system-deps:
	@$(PKGS) "the test suite" redis-server:redis-server redis-cli:redis-tools openssl:openssl \
		promtool:prometheus chromium:chromium

run: install
	$(BIN)/ielts-service serve

test: install system-deps
	$(BIN)/ruff check ielts_service tests bench locustfile.py
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Every test of tests/topologies/ on real Redis deployments: a 6-node cluster, a Sentinel set
# and a TLS Redis with a password (`make test` runs one representative of each).
test-topologies: install system-deps
	TOPOLOGY_MATRIX=1 $(BIN)/python -m pytest tests/topologies

# The load generator of bench/ (it falls back to a Python client, and says so, without it).
.PHONY: bench-deps
bench-deps:
	@$(PKGS) "the benchmarks" wrk:wrk || true

# The generated-input tests at 20x the cases `make test` runs.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_fuzz.py -q

bench: install system-deps bench-deps
	$(BIN)/python -m bench

# Redis commands per request, what one Redis node sustains for them (redis-benchmark) and
# how many instances a node or a cluster carries: writes bench/redis-capacity-latest.md.
.PHONY: bench-redis
bench-redis: install system-deps
	$(BIN)/python -m bench.redis_capacity

# A load test of a running deployment (locustfile.py): headless for DURATION, then locust's
# summary. From one address, rate limits and generation quotas apply: see the README.
HOST       ?=
DURATION   ?= 60s
USERS      ?= 50
SPAWN_RATE ?= 10
loadtest: $(LOAD_STAMP)
	@test -n "$(HOST)" || { echo "usage: make loadtest HOST=https://your.deployment [DURATION=60s USERS=50 SPAWN_RATE=10]" >&2; exit 2; }
	$(LOAD_VENV)/bin/locust -f locustfile.py --headless --host "$(HOST)" --run-time $(DURATION) \
		--users $(USERS) --spawn-rate $(SPAWN_RATE) --only-summary

# Proves `make run` and `make test` on a bare Debian bookworm built by debootstrap (root only;
# not part of `make test`): see scripts/fresh-debian-check.
.PHONY: fresh-debian-check
fresh-debian-check:
	scripts/fresh-debian-check

clean:
	rm -rf $(VENV) $(LOAD_VENV) .pytest_cache build *.egg-info
