# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
FULL ?=
VENDORS ?= sqlite postgresql mysql

.PHONY: demo test install-dev django-suite bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

## demo: set up and serve the demo bookstore on http://127.0.0.1:8000/ (SQLite)
demo: $(PY)
	$(PIP) install -e ".[toolbar]"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed
	@echo ""
	@echo "  Demo bookstore:           http://127.0.0.1:8000/"
	@echo "  N+1 page:                 http://127.0.0.1:8000/books/n-plus-one/"
	@echo "  Fixed with select_related: http://127.0.0.1:8000/books/select-related/"
	@echo "  Traces (the tracer app):  http://127.0.0.1:8000/__tracer__/"
	@echo "  Each page has django-debug-toolbar, with the tracer's Query pipeline panel."
	@echo ""
	$(PY) manage.py runserver 127.0.0.1:8000

install-dev: $(PY)
	$(PIP) install -e ".[dev]"
	@# mysqlclient compiles against libmariadb/libmysqlclient; without them the
	@# MariaDB tests skip (and fail under CI=true).
	$(PIP) install -e ".[mysql]" || echo "mysqlclient could not be built (install libmariadb-dev and pkg-config); MariaDB tests will be skipped."

## test: install what the tests need and run them all
test: install-dev
	$(PY) -m ruff check tracer tests demo_app
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
