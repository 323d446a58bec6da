# Two commands set everything up on a fresh machine:
#   make demo   serve the example shop on an embedded local DynamoDB (http://127.0.0.1:5000)
#   make test   ruff, mypy --strict and the whole suite on moto's server and on dynalite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ENGINES ?= moto dynalite

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/serve.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/mypy

test: lint node_modules/.installed
	@for engine in $(ENGINES); do \
		echo "== test suite on $$engine =="; \
		DYNAMODB_ENGINE=$$engine $(PY) -m pytest -q || exit 1; \
	done

bench: $(VENV)/.installed node_modules/.installed
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules
