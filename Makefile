# crewreport: `make run` to try it, `make test` to check it.
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(PY) -m flask --app crewreport
HOST   ?= 127.0.0.1
PORT   ?= 5000
# Extra pytest arguments, e.g. `make test ARGS="-k intake -x"`.
ARGS   ?=

.PHONY: setup run test lint bench mutate clean

# Everything the app and its tests need, into git-ignored places:
# .venv/ (Python, with the test extra), node_modules/, static/vendor/ and
# static/dist/ (minified, gzip and brotli copies of what /static/ serves).
STATIC_SOURCES := $(shell find static/js static/css -name '*.js' -o -name '*.css' 2>/dev/null)
setup: $(VENV)/.installed static/vendor/.built static/dist/manifest.json

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

static/vendor/.built: package.json package-lock.json static/js/vendor-entries/*.js
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build
	touch $@

# Rebuilt whenever a stylesheet or module changes (Flask serves an edited file
# as written until then, never a stale build).
static/dist/manifest.json: static/vendor/.built scripts/build-static.mjs $(STATIC_SOURCES)
	npm run --silent build:static

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

# Every benchmark module in benchmarks/ (benchmarks/run.py finds them), one
# JSON report: benchmarks/results/latest.json. `make bench ARGS="--only queue"`.
bench: setup
	$(PY) -m benchmarks.run $(ARGS)

# Mutation testing of envelope, report and intake (setup.cfg's [mutmut]): mutmut
# is installed on demand; survivors are listed at the end (`mutmut show NAME`).
mutate: setup
	$(PY) -m pip show mutmut >/dev/null 2>&1 || $(PY) -m pip install --quiet 'mutmut==3.8.1'
	$(VENV)/bin/mutmut run --max-children 2 $(ARGS)
	$(VENV)/bin/mutmut results

clean:
	rm -rf mutants $(VENV) node_modules static/vendor static/dist *.egg-info .pytest_cache build dist
