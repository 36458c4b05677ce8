# Two entry points (see README): `make demo` and `make test`. Both create the virtual
# environment, install the package with every extra under the tested pins, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test validate bench lint clean

# The warmup compiles the kernels users meet first into the on-disk cache (seconds when warm).
setup: $(STAMP)
	$(BIN)/bioplastic warmup

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

demo: setup
	$(BIN)/bioplastic demo

test: setup
	$(BIN)/python -m pytest -q

validate: setup
	$(BIN)/bioplastic validate

bench: setup
	$(BIN)/bioplastic bench

lint: setup
	$(BIN)/ruff check bioplastic tests experiments

clean:
	rm -rf $(VENV) results .pytest_cache
