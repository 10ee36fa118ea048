# The two commands of the README:
#   make demo   install, start a server on embedded SQLite and run the journey
#               (generated traces -> a model that answers right; make demo-corpus: the corpus;
#               make demo DEMO_ARGS=--rl adds a GRPO stage)
#   make test   install, lint, type-check and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install browser console demo demo-corpus test test-unit test-inprocess test-slow lint bench soak

# Both distributions, editable, with every extra, plus the dev group (pip >= 25.1).
$(STAMP): pyproject.toml client/pyproject.toml server/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e './client[monitor]' -e './server[postgres,train]' --group dev
	@$(MAKE) --no-print-directory browser
	touch $(STAMP)

# The console's browser test drives Debian's chromium (Playwright cannot download
# its own here). Installed where apt-get and root allow; else the test says how.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	    || echo "note: chromium did not install; tests/test_console.py will be skipped"; \
	  else echo "note: no chromium (apt-get install chromium); tests/test_console.py will be skipped"; fi; }

install: $(STAMP)

demo: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python scripts/demo.py $(DEMO_ARGS)

demo-corpus: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python scripts/demo_corpus.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy client/tunixrt server/tunixrt_server scripts tests
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/python scripts/gen_protos.py --lint

# Three test processes (pytest-xdist): the tests wait on servers, workers and
# compiles as much as they compute. Files whose module fixtures train a model
# keep to one process (xdist_group).
test: lint
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -n 3 --dist loadgroup

# The edit-test loop: pure modules only (no JAX, no subprocess, no server), seconds.
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# Servicers in process (grpcio-testing), JAX in process, the import invariants.
test-inprocess: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest tests/inprocess

# Slow cases: the 300-step learning runs, workers + kill -9, 4 emulated devices vs 1,
# the Gemma export round trip and the true 270M shapes: ~10 more minutes.
test-slow: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -m slow -s

# Rebuild the committed console bundle from web/ (needs Node; pip installs do not).
console: $(STAMP)
	npm ci --prefix web --no-audit --no-fund
	$(BIN)/python scripts/build_console.py

bench: $(STAMP)
	$(BIN)/python scripts/bench_ingest.py
	$(BIN)/python scripts/bench_export.py
	JAX_PLATFORMS=cpu $(BIN)/python scripts/bench_training.py

# 30 minutes of mixed load on a throwaway PostgreSQL; a JSON line a minute.
soak: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python scripts/soak.py
