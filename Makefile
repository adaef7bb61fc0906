# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
FULL ?=
VENDORS ?= sqlite postgresql mysql

.PHONY: demo test install-dev django-suite bench bench-instructions bench-bytecodes clean tutorial-screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)

## demo: set up and serve the demo bookstore on http://127.0.0.1:8000/ (SQLite; on the
## local servers with DEMO_ENGINE=postgresql or DEMO_ENGINE=mysql; DEMO_ALSO=postgresql
## adds an alias of that engine to compare with, never connected to unless you run on it)
DEMO_ENGINE ?= sqlite
DEMO_ALSO ?=
comma := ,
DEMO_ENGINES := $(DEMO_ENGINE) $(subst $(comma), ,$(DEMO_ALSO))
DEMO_EXTRAS := toolbar$(if $(filter postgresql,$(DEMO_ENGINES)),$(comma)postgres)$(if $(filter mysql,$(DEMO_ENGINES)),$(comma)mysql)
demo: $(PY)
	$(PIP) install -e ".[$(DEMO_EXTRAS)]"
	DEMO_ENGINE=$(DEMO_ENGINE) $(PY) manage.py demo_database
	DEMO_ENGINE=$(DEMO_ENGINE) $(PY) manage.py migrate --noinput
	DEMO_ENGINE=$(DEMO_ENGINE) $(PY) manage.py seed
	@echo ""
	@echo "  Demo bookstore ($(DEMO_ENGINE)): http://127.0.0.1:8000/"
	@echo "    The index lists every pattern (N+1s, duplicates, .count() per row, a slow"
	@echo "    aggregate, 5,000-row hydration, Prefetch(), bulk writes, raw SQL,"
	@echo "    get_or_create, an async view), each a bad page and its fix, and says what"
	@echo "    the tracer should show on each."
	@echo "  Traces (the tracer app):  http://127.0.0.1:8000/__tracer__/"
	@echo "  Each page has django-debug-toolbar, with the tracer's Query pipeline panel."
	@echo ""
	DEMO_ENGINE=$(DEMO_ENGINE) DEMO_ALSO=$(DEMO_ALSO) $(PY) manage.py runserver 127.0.0.1:8000

install-dev: $(PY)
	$(PIP) install -e ".[dev]"
	@# mysqlclient compiles against libmariadb/libmysqlclient; without them the
	@# MariaDB tests skip (and fail under CI=true).
	$(PIP) install -e ".[mysql]" || echo "mysqlclient could not be built (install libmariadb-dev and pkg-config); MariaDB tests will be skipped."

## test: install what the tests need and run them all
test: install-dev
	$(PY) -m ruff check tracer tests demo_app
	$(PY) -m ruff format --check tracer tests demo_app
	$(PY) -m mypy
	$(PY) -m pytest

## django-suite: Django's own tests, plain vs traced (FULL=1 for the whole suite)
django-suite: install-dev
	$(PIP) install -r tests/django_suite_requirements.txt
	@status=0; for vendor in $(VENDORS); do \
		$(PY) tests/django_suite.py --vendor $$vendor $(if $(FULL),--full) || status=1; \
	done; exit $$status

clean:
	rm -rf $(VENV) .cache dist build demo_app/db.sqlite3

## bench: the tracer's cost next to plain and debug-toolbar (see tests/bench.py)
bench: install-dev
	$(PY) tests/bench.py

## bench-instructions: instructions one run of each bench workload costs, plain, idle
## and recording, counted by callgrind (needs valgrind; see tests/bench_instructions.py)
bench-instructions: install-dev
	$(PY) tests/bench_instructions.py

## bench-bytecodes: bytecodes each bench workload runs, plain and recording, and the
## tracer functions that run them (exact counts; see tests/bench_bytecodes.py)
bench-bytecodes: install-dev
	$(PY) tests/bench_bytecodes.py --top 8

## tutorial-screenshots: docs/tutorial.md's screenshots and their figures, from a new
## demo database, in Debian's Chromium (see docs/tutorial_screenshots.py)
tutorial-screenshots: install-dev
	$(PY) docs/tutorial_screenshots.py
