# crewreport: `make run` to try it, `make test` to check it.
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(PY) -m flask --app crewreport
HOST   ?= 127.0.0.1
PORT   ?= 5000
# Extra pytest arguments, e.g. `make test ARGS="-k intake -x"`.
ARGS   ?=

.PHONY: setup run test lint bench clean

# Everything the app and its tests need, into git-ignored places:
# .venv/ (Python, with the test extra), node_modules/ and static/vendor/.
setup: $(VENV)/.installed static/vendor/.built

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

static/vendor/.built: package.json package-lock.json static/js/vendor-entries/*.js
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build
	touch $@

# A demo store and keys if there are none (an existing store keeps its data;
# only the demo users get fresh passwords, printed here, never written down),
# then gunicorn on 127.0.0.1:5000.
run: setup
	@$(FLASK) init-db
	@$(FLASK) demo
	@echo "Serving on http://$(HOST):$(PORT)/ (crew app), http://$(HOST):$(PORT)/auth/login to sign in. Ctrl-C stops."
	@$(FLASK) serve --host $(HOST) --port $(PORT)

test: setup
	$(PY) -m pytest $(ARGS)

# The lint alone (tests/test_lint.py runs it inside `make test` too); `ruff check --fix .` repairs most.
lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) -m benchmarks.intake
	$(PY) -m benchmarks.intake_served
	$(PY) -m benchmarks.queue

clean:
	rm -rf $(VENV) node_modules static/vendor *.egg-info .pytest_cache build dist
