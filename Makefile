# digestbot: `make demo` runs the main job on embedded defaults, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev

.PHONY: install demo test lint format check bench clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: install
	$(PY) -m digestbot demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check digestbot tests bench
	$(VENV)/bin/ruff format --check digestbot tests bench
	$(VENV)/bin/mypy digestbot tests bench

format: install
	$(VENV)/bin/ruff format digestbot tests bench
	$(VENV)/bin/ruff check --fix digestbot tests bench

check: lint test

bench: install  # the quick figures; bench/slack.py (1M papers) and bench/newsletter.py take longer
	$(PY) bench/ingest.py
	$(PY) bench/relevance_eval.py
	$(PY) bench/feeds.py
	$(PY) bench/delivery.py
	$(PY) bench/daemon.py --seconds 10

clean:
	rm -rf $(VENV) data out .pytest_cache .mypy_cache .ruff_cache
