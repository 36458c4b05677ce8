# Two entry points (see README): `make demo` and `make test`. Both create the virtual
# environment, install the package with every extra under the tested pins, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test validate bench peers bench-peers lint clean docs notebooks

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

# The peer simulators of `bioplastic bench --peers` (not part of `all`, never needed by `test`).
# Norse and BindsNET go in without their dependencies: their declared requirements would pull
# another torch (BindsNET asks for torch >= 2.14) or a CUDA torchvision (Norse); the `peers`
# extra holds what they import. BindsNET's torchvision import is stubbed by the benchmark.
peers: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,peers]"
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt norse==1.1.0 nirtorch==2.6 \
		bindsnet==0.3.4

bench-peers: peers
	OMP_NUM_THREADS=1 $(BIN)/bioplastic bench --peers

lint: setup
	$(BIN)/ruff check bioplastic tests experiments

clean:
	rm -rf $(VENV) results .pytest_cache docs/_build docs/reference/generated docs/notebooks

# Execute every notebook (figures inline) into results/notebooks/, leaving the sources as they are.
notebooks: setup
	mkdir -p results/notebooks
	for nb in experiments/notebooks/*.py; do \
		env -u MPLBACKEND $(BIN)/jupytext --to ipynb --execute \
			--output results/notebooks/$$(basename $$nb .py).ipynb $$nb || exit 1; \
	done

# API reference and guides (Sphinx); notebooks executed so the pages show their figures.
docs: setup
	env -u MPLBACKEND BIOPLASTIC_DOCS_EXECUTE=1 \
		$(BIN)/sphinx-build -b html -W --keep-going docs docs/_build/html
	@echo "open docs/_build/html/index.html"
