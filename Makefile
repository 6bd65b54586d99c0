# Two commands on a fresh machine (Python 3.11+, git, make):
#   make demo   set up and run the bundled demo (output under var/out/)
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup bench bench-unsubscribe clean browser

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) main.py --config config/demo.toml subscribers import --consent newsletter config/demo/subscribers.csv
	$(PY) main.py --config config/demo.toml once

test: $(STAMP) browser
	$(PY) -m pytest

# Debian's chromium and its driver, for the readers' journey in a real browser
# (tests/web/test_browser.py). Idempotent; without apt (or root) the test says how to get them
# and is skipped, except in CI, where it fails.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium and chromium-driver for the browser test"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "could not install chromium: tests/web/test_browser.py will be skipped (and fail under CI)"; \
	else echo "chromium/chromium-driver missing and apt-get unavailable: tests/web/test_browser.py will be skipped"; fi

bench-unsubscribe: $(STAMP)
	$(PY) bench/unsubscribe.py

# Tamtam beside its peers and the wire (docs/benchmarks.md says what and how). Installs what it
# needs itself (postfix's smtp-sink/smtp-source, hyperfine, .venv-bench with the peers) and
# rewrites docs/benchmarks.md. Options: make bench BENCH_ARGS="--full" (100,000 subscribers),
# BENCH_ARGS="--sizes 1000 --rounds 3 --only fanout", bench/run.py --help for the rest.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) bench/run.py --compare --write-docs $(BENCH_ARGS)

clean:
	rm -rf var/ .pytest_cache
