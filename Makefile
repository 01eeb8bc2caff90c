# Two commands do everything on a fresh machine: `make run` (the main job) and `make test` (the full suite).
# Both create the virtual environment in .venv/ when it is missing and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m starter_code data synthetic --root data/synthetic
	$(BIN)/python -m starter_code notebooks --out build/notebooks
	$(BIN)/python -m starter_code report --runs runs
	@echo "Open the notebooks in JupyterLab: $(BIN)/jupyter lab notebooks/  (executed copies: build/notebooks/)"

test: $(STAMP)
	$(BIN)/ruff check .
	@$(BIN)/python -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build runs data/synthetic data/synthetic-smoke
