# scangate — developer entry points. Every target sets up what it needs itself.
PYTHON ?= python3
VENV   ?= .venv
# The demo's port: `make demo PORT=8081`.
PORT   ?= 8080
DIST   ?= dist
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint format demo dist bench e2e soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# helm-sdkpy ships the real Helm library; its metadata asks for Python 3.12 but it runs on 3.11.
	$(BIN)/pip install --quiet --ignore-requires-python helm-sdkpy cffi pycparser
	touch $(STAMP)
	@echo "scangate is installed in $(VENV); put the scangate command on your PATH with: . $(VENV)/bin/activate"

setup: $(STAMP)

## Run the test suite (SQLite and a throwaway PostgreSQL, kubesim, kubectl, Helm).
test: $(STAMP)
	$(BIN)/pytest -q
	# The suites whose outcome depends on the Kubernetes release (exec/attach authorization,
	# TokenRequest defaults) once more against kubesim playing 1.30 (the default is 1.35).
	KUBESIM_KUBE_VERSION=1.30 $(BIN)/pytest -q tests/exec tests/api/test_grants_kubectl.py \
		tests/kube/test_issued_kubeconfig.py tests/chart/test_chart_identity.py \
		tests/guard/test_guard_kubectl.py

## Lint, format check and strict type check.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Start scangate with a simulated cluster and a demo configuration on PORT (default 8080).
demo: $(STAMP)
	$(BIN)/scangate serve --demo --port $(PORT)

## Build the release wheel into $(DIST) and print its sha256 (what CI pipelines pin, see examples/).
dist: $(STAMP)
	rm -rf $(DIST) build
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(DIST) .
	cd $(DIST) && sha256sum *.whl | tee SHA256SUMS

## Reliability soak: tests/reliability at the full sizes (300 faulty grant requests, 30 kill -9
## rounds, 200 clients for 60 s...); see docs/RELIABILITY.md.
soak: $(STAMP)
	$(BIN)/pytest -m soak -q

## Benchmark: scangate against the floor (the bare Kubernetes calls) on SQLite and PostgreSQL;
## writes docs/bench/results.json and docs/bench/latency.png (see docs/bench/RESULTS.md).
bench: $(STAMP)
	$(BIN)/python -m bench --json docs/bench/results.json

## Opt-in end-to-end suite against a real cluster (set SCANGATE_E2E_KUBECONFIG).
e2e: $(STAMP)
	$(BIN)/pytest -m e2e -q

clean:
	rm -rf $(VENV) dist build .mypy_cache .ruff_cache .pytest_cache *.egg-info
