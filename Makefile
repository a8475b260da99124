# The two commands a newcomer runs: `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
# this machine's pip config names local wheel folders that may be absent: hide that noise only
QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
PY := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: demo test test-future integration lint venv clean chromium

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip $(QUIET)
	$(VENV)/bin/pip install --quiet -e '.[test]' $(QUIET)
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/outreach demo

test: $(VENV)/.installed chromium
	$(VENV)/bin/ruff check outreach channels flows tests bench
	$(VENV)/bin/python -m pytest -q

# The whole suite with the clock a year and a month ahead (FUTURE=+800d for more): every Python
# process of the run (pytest, workers, uvicorn, Prefect, CLI runs) imports tests/timeshift/sitecustomize.py
# through PYTHONPATH and travels by that offset with time-machine. PostgreSQL's server clock stays
# real; product code never reads it.
FUTURE ?= +400d
test-future: $(VENV)/.installed chromium
	OUTREACH_TEST_CLOCK_SHIFT='$(FUTURE)' PYTHONPATH=$(CURDIR)/tests/timeshift$${PYTHONPATH:+:$$PYTHONPATH} \
	  $(VENV)/bin/python -m pytest -q

# The browser tests drive Debian's chromium (Playwright's own browser download cannot work here).
chromium:
	@test -x /usr/bin/chromium || apt-get install -y --no-install-recommends chromium \
	  || (apt-get update && apt-get install -y --no-install-recommends chromium) \
	  || echo "warning: could not install chromium: the browser tests will be skipped"

# only the production-shaped suite: Prefect server on PostgreSQL, two workers, faults (~3-5 min)
integration: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -m integration

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check outreach channels flows tests bench
	$(VENV)/bin/ruff format --check outreach channels flows tests bench

clean:
	rm -rf $(VENV) .prefect outreach.db* outbox demo
