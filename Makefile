# QIP Portal. `make run` to try it, `make test` to test it. Needs only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PORT ?= 8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint jobs bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Serves http://127.0.0.1:$(PORT) (8000 by default) on SQLite, tasks in-process, email on
# the console; links in emails point there too (SITE_URL, unless set).
# Scheduled jobs run every 10 minutes beside the server; Ctrl-C stops both.
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	export SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)}; \
	trap 'kill 0' INT TERM EXIT; \
	$(BIN)/python manage.py run_scheduled_jobs --every 600 & \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The suite runs in TEST_WORKERS processes at once (pytest-xdist; 0: in this process
# alone). Many tests wait on subprocesses, a browser or a worker, so more processes than
# cores pays. Each process has its own test database and Redis databases (conftest.py).
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

# The performance harness of BENCHMARKS.md: builds a large data set in its own PostgreSQL
# database (server BENCH_PG, default postgres://postgres@127.0.0.1:5432), measures, load-tests,
# rewrites BENCHMARKS.md, and drops the database. About 20 minutes at full scale.
bench: $(STAMP)
	$(BIN)/python -m scripts.bench --scale $(or $(SCALE),full)

jobs: $(STAMP)
	$(BIN)/python manage.py run_scheduled_jobs

clean:
	rm -rf $(VENV) staticfiles
