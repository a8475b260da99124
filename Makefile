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

# The suite on pytest-xdist workers, each file on one worker so a file's module fixtures (provider
# servers) start once; loadgroup would ignore xdist_group under pytest 9.2 (pytest-xdist issue 1386).
# Then, serially, tests marked serial and the integration cluster, which starts its own Prefect
# server, workers and flow-run processes and crashed a flow run when it shared a loaded machine
# with another worker. Both parts always run; the target fails if either did.
TEST_WORKERS ?= 2

# the two parts of the suite, shared by `test` and `test-future`
SUITE = status=0; \
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not integration and not serial" || status=$$?; \
	$(VENV)/bin/python -m pytest -q -m "integration or serial" || status=$$?; \
	exit $$status

test: $(VENV)/.installed chromium
	$(VENV)/bin/ruff check outreach outreach_dev channels flows tests bench
	$(SUITE)

# The whole suite with the clock a year and a month ahead (FUTURE=+800d for more): every Python
# process of the run (pytest, workers, uvicorn, Prefect, CLI runs) imports tests/timeshift/sitecustomize.py
# through PYTHONPATH and travels by that offset with time-machine. PostgreSQL's server clock stays
# real; product code never reads it.
FUTURE ?= +400d
test-future: export OUTREACH_TEST_CLOCK_SHIFT = $(FUTURE)
test-future: export PYTHONPATH := $(CURDIR)/tests/timeshift$(if $(PYTHONPATH),:$(PYTHONPATH))
test-future: $(VENV)/.installed chromium
	$(SUITE)

# The browser tests drive Debian's chromium (Playwright's own browser download cannot work here).
chromium:
	@test -x /usr/bin/chromium || apt-get install -y --no-install-recommends chromium \
	  || (apt-get update && apt-get install -y --no-install-recommends chromium) \
	  || echo "warning: could not install chromium: the browser tests will be skipped"

# only the production-shaped suite: Prefect server on PostgreSQL, two workers, faults (~3-5 min)
integration: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -m integration

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check outreach outreach_dev channels flows tests bench
	$(VENV)/bin/ruff format --check outreach outreach_dev channels flows tests bench

clean:
	rm -rf $(VENV) .prefect outreach.db* outbox demo
