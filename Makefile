# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install demo test lint bench clean db-start db-stop

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/gnnsec demo

test: install
	$(BIN)/ruff check gnnsec tests benchmarks
	$(BIN)/python -m mypy gnnsec
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check gnnsec tests benchmarks

bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/score.py

db-start: install
	$(BIN)/gnnsec db start

db-stop: install
	$(BIN)/gnnsec db stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
