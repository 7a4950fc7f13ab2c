# shiftgrid: `make run` (the main job) and `make test` (the test suite); each installs what it needs.
# TORCH_SPEC picks the PyTorch build: the default pins the CPU wheel these machines carry; on a
# GPU machine whose venv has no torch yet, `make run TORCH_SPEC=torch` gets the CUDA build from PyPI.
# A torch already importable in the venv is kept as it is.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.shiftgrid-installed

.PHONY: install run test benchmark clean

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

benchmark: $(STAMP)
	$(VENV)/bin/shiftgrid benchmark envs

clean:
	rm -rf $(VENV) runs .pytest_cache
