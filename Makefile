# shiftgrid: `make run` (the main job) and `make test` (the test suite); each installs what it needs.
# `make help` lists every target. Test tiers (pytest markers slow, training, levels, gpu):
# docs/architecture.md#tests.
# TORCH_SPEC picks the PyTorch build: the default pins the CPU wheel these machines carry; on a
# GPU machine whose venv has no torch yet, `make run TORCH_SPEC=torch` gets the CUDA build from PyPI.
# A torch already importable in the venv is kept as it is.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.shiftgrid-installed

.PHONY: help install run test test-fast gpu-check benchmark clean

help:
	@echo "make run         train tensor-ppo on GoTo, evaluate it on 1,000 episodes of every shift split, print the report"
	@echo "make test        the complete test suite with the doctests (what CI runs; gpu tests skip without CUDA)"
	@echo "make test-fast   the inner loop: the suite without the slow tiers and gpu tests (-m \"not slow and not gpu\")"
	@echo "make gpu-check   every CUDA path and the gpu tests, one table of figures (one line and exit 0 without CUDA)"
	@echo "make benchmark   environment throughput (shiftgrid benchmark envs)"
	@echo "make install     create .venv and install shiftgrid with its extras"
	@echo "make clean       remove .venv, runs/ and pytest's cache"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[agents,sweep,dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/shiftgrid main

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow and not gpu"

gpu-check: $(STAMP)
	$(PY) -m shiftgrid.scripts.gpu_check

benchmark: $(STAMP)
	$(VENV)/bin/shiftgrid benchmark envs

clean:
	rm -rf $(VENV) runs .pytest_cache
