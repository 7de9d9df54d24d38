# The README's two commands: `make demo` and `make test`. Both create .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: demo test install install-dev bench clean

# torch goes in first, pinned, where it is missing: an open range in a fresh venv would pull the
# multi-GB CUDA build; on this kind of machine torch==2.13.0 is a local CPU wheel. GPU users
# install their CUDA torch into .venv before running make.
$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/nlpx train

# one pytest-xdist worker per core; worksteal keeps a core from idling behind one long test
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n auto --dist worksteal

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/cli_latency.py
	$(BIN)/python benchmarks/default_train.py
	$(BIN)/python benchmarks/mlm_throughput.py --precision 32-true  # bf16 rows: an hour on a CPU without bf16 units
	$(BIN)/python benchmarks/glue_vs_hf.py
	$(BIN)/python benchmarks/family_throughput.py
	$(BIN)/python benchmarks/rtd_throughput.py
	$(BIN)/python benchmarks/rtd_modes.py

clean:
	rm -rf $(VENV) .nlpx_cache runs
