# Two entry points (see README): `make quickstart` and `make test`.
# Uses the active virtualenv if there is one, else creates .venv here.
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
PY := $(VENV)/bin/python
# The CPU wheel; a bare `torch` would pull a multi-GB CUDA build. Override for other platforms.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install quickstart test bench

$(PY):
	python3 -m venv $(VENV)

install: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"

quickstart: install
	$(VENV)/bin/asma train

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/pretrain_speed.py
