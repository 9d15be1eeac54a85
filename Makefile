# Two entry points for a fresh clone: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PORT ?= 8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-django test-pytest lint schema clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, migrate and start the sandbox: the sandbox service (fake Stripe, push and todo
## API, console on :8765) and the backend (runserver on :8000) in sandbox mode, SQLite, no
## credentials. Ctrl-C stops both. `make run PORT=8001` picks another port.
run: $(STAMP)
	$(BIN)/python manage.py sandbox serve --runserver --port $(PORT)

## Set up and run the whole suite under both runners; they must agree on the count.
test: $(STAMP)
	$(BIN)/python scripts/run_tests.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Build the docs site into site/ as CI does (mkdocs build --strict, offline; docs/testing.md).
.PHONY: docs
docs: $(STAMP)
	$(BIN)/python scripts/render_api_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

schema: $(STAMP)
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

clean:
	rm -rf $(VENV) db.sqlite3 sandbox-state
