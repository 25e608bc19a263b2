# The few targets people use. `make demo` and `make test` each set up a fresh machine first.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --locked --no-sync
FAST := not integration and not e2e and not docker

.PHONY: setup demo test test-fast lint schemas-check format up down status bench clean

setup:
	@infra/scripts/setup.sh

demo: setup
	$(RUN) riverbank demo

test: setup
	$(RUN) pytest

test-fast: setup
	$(RUN) pytest -m "$(FAST)"

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

# Every schema in schemas/ against its earlier versions in git history, at its subject's level.
schemas-check: setup
	$(RUN) riverbank schemas check --offline

format:
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

up down status: setup
	$(RUN) riverbank $@

bench: setup
	$(RUN) python -m bench

clean:
	-$(RUN) riverbank down
	rm -rf .riverbank build
