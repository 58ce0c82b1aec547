# Two commands matter: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest audit migrate seed bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUN)

# The demo store (and its logins, printed once) is for trying Restock; production runs omit --demo.
run: $(STAMP_RUN)
	$(PY) -m restock run --demo

migrate: $(STAMP_RUN)
	$(PY) -m restock migrate

seed: $(STAMP_RUN)
	$(PY) -m restock seed --demo

lint: $(STAMP_DEV)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP_DEV)
	$(PY) -m mypy

pytest: $(STAMP_DEV)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Known vulnerabilities in the pinned runtime requirements and what they pull in (.ci/run runs
# it). --strict: a package the service cannot look up fails the audit instead of passing unseen.
audit: $(STAMP_DEV)
	$(PY) -m pip_audit --requirement requirements.txt --vulnerability-service pypi --strict \
		--progress-spinner off $(AUDIT_ARGS)

bench: $(STAMP_DEV)
	$(PY) -m bench.orders
	$(PY) -m bench.tokens

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
