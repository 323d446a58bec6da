# Two commands set everything up on a fresh machine:
#   make demo   serve the example shop on an embedded local DynamoDB (http://127.0.0.1:5000)
#   make test   ruff, mypy --strict, the whole suite on moto's server (with a branch-coverage
#               floor) and on dynalite, and the Performance page's exact figures
#   make soak   gunicorn under load and DynamoDB faults, every answer checked (a few minutes)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ENGINES ?= moto dynalite
# The soak's length in seconds (CI runs a short one); SOAK_FLAGS=--write-readme rewrites
# the soak figures on the docs' Security page (docs/security.md) from the run.
SOAK_SECONDS ?= 240
SOAK_FLAGS ?=
# uv installs several times faster than pip (a first `make demo` serves in seconds rather
# than a minute); it comes from PyPI into the virtualenv, so nothing outside it changes.
UV := $(VENV)/bin/uv
INSTALL := $(UV) pip install --quiet --python $(PY)

.PHONY: demo lambda-local test lint claims docs neighbours soak bench mutate browser \
	screenshot dist clean

# Each target installs only its own extra, with its own stamp: the demo needs a handful
# of packages, the tests and benchmarks many more.
# The virtualenv gets no pip of its own (ensurepip takes seconds; uv does the installs): uv
# goes in through this Python's pip, or, where that pip is missing or older than 22.3, a
# virtualenv with pip is made after all.
$(VENV)/.created:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check uv 2>/dev/null \
		|| { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --disable-pip-version-check uv; }
	touch $@

$(VENV)/.demo-installed: pyproject.toml $(VENV)/.created
	$(INSTALL) -e '.[demo]'
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.created
	$(INSTALL) -e '.[test]'
	touch $@

$(VENV)/.docs-installed: pyproject.toml $(VENV)/.created
	$(INSTALL) -e '.[docs]'
	touch $@

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.created
	$(INSTALL) -e '.[bench]'
	touch $@

$(VENV)/.mutate-installed: pyproject.toml $(VENV)/.created
	$(INSTALL) -e '.[mutate]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.demo-installed
	$(PY) examples/serve.py

# The Lambda recipe's handler, invoked twice with a sample API Gateway event, on an
# embedded DynamoDB (or DYNAMODB_ENDPOINT_URL).
lambda-local: $(VENV)/.demo-installed
	$(PY) examples/invoke_lambda.py examples/events/http-api-get-visits.json

# The browser tests drive Debian's Chromium through its chromedriver. Installed here when
# missing and we may (root with apt-get, as on CI); otherwise those tests fail with a
# message saying how to install it, or skip when ALLOW_NO_BROWSER=1.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing chromium and chromium-driver for the browser tests =="; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium and chromedriver are missing: install them (Debian: apt-get install" \
			"chromium chromium-driver) or set ALLOW_NO_BROWSER=1 to skip the browser tests"; \
	fi

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests examples benchmarks tools conftest.py docs/conf.py
	$(VENV)/bin/mypy

# Coverage is measured on the first engine's run only: the second runs the same code, and
# measuring costs time. The floor is pyproject.toml's [tool.coverage.report] fail_under.
test: lint node_modules/.installed browser
	@first=1; for engine in $(ENGINES); do \
		echo "== test suite on $$engine =="; \
		cov=""; [ $$first = 1 ] && cov="--cov --cov-report=term:skip-covered"; first=0; \
		DYNAMODB_ENGINE=$$engine $(PY) -m pytest -q $$cov || exit 1; \
	done
	@$(MAKE) --no-print-directory claims

# The Performance page's calls and capacity units per request (docs/performance.md),
# measured again on dynalite (exact there) in under a minute; `make bench` measures
# everything, CPU included, and rewrites them.
claims: $(VENV)/.test-installed node_modules/.installed
	@echo "== the Performance page's figures =="
	$(PY) -m benchmarks.claims

# The documentation site (docs/, the API reference from the docstrings), rebuilt from
# scratch so that every warning shows, and each one is an error.
docs: $(VENV)/.docs-installed
	rm -rf docs/_build
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

# Flask's, Flask-Login's and Flask-WTF's own test suites, from their released sources, with
# every app they build on this package's sessions (tests/neighbours.py), in .venv-neighbours.
neighbours:
	.ci/neighbours

# gunicorn serving benchmarks/soak/app.py to many users and devices through the fault proxy,
# in phases of faults, every answer checked against a model of the acknowledged writes;
# stops by itself, and exits non-zero on any violation (benchmarks/soak/).
soak: $(VENV)/.test-installed node_modules/.installed
	$(PY) -m benchmarks.soak --seconds $(SOAK_SECONDS) $(SOAK_FLAGS)

# Refresh the Quick start page's picture of the demo (docs/demo.png), taken by the browser test on dynalite (whose
# capacity figures are DynamoDB's).
screenshot: $(VENV)/.test-installed node_modules/.installed browser
	DYNAMODB_ENGINE=dynalite DEMO_SCREENSHOT=docs/demo.png \
		$(PY) -m pytest -q tests/test_browser.py -k shopping

bench: $(VENV)/.bench-installed node_modules/.installed
	$(PY) benchmarks/run.py

# Mutation testing of the modules that carry the guarantees (pyproject.toml's
# [tool.mutmut]), on moto, within MUTATE_SECONDS; a later run picks up where one stopped.
# MUTANTS narrows it to names or globs (`make mutate MUTANTS='dynamodb_session_flask.store.*'`);
# `mutmut show NAME` shows a mutant. docs/mutation.md lists what survived and why.
MUTATE_SECONDS ?= 3600
MUTANTS ?=
mutate: $(VENV)/.mutate-installed
	DYNAMODB_ENGINE=moto timeout $(MUTATE_SECONDS) $(VENV)/bin/mutmut run --max-children 2 \
		$(MUTANTS) || echo "(stopped after $(MUTATE_SECONDS) s: run make mutate again to go on)"
	$(VENV)/bin/mutmut results

dist: $(VENV)/.created
	rm -rf dist
	$(UV) build --quiet --out-dir dist

clean:
	rm -rf $(VENV) .venv-neighbours node_modules dist mutants
