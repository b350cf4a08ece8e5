# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-quick bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-install only when the package metadata changes.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/tfmm demo $(ARGS)

# Two workers: the suite is mostly single-threaded Python (tracing, tiny models).
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 --durations=12 $(ARGS)

# Skips tests marked slow (training, conversion, subprocesses); CI runs all.
test-quick: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 -m "not slow" $(ARGS)

# Benchmarks (not run by CI): writes benchmarks/results/results.{md,json} and plots, the
# speed profile (speed_profile.md) and the compressed models (compressed.md).
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py $(ARGS)
	cd benchmarks && ../$(BIN)/python speed_profile.py
	cd benchmarks && ../$(BIN)/python compressed.py

clean:
	rm -rf $(VENV) build *.egg-info tfmm-demo .pytest_cache
