# Two commands for a fresh machine: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not installed (sudo apt-get install chromium); the HTML report's browser test will be skipped"; fi; }
	@command -v tesseract >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null; \
	  else echo "note: tesseract-ocr not installed (sudo apt-get install tesseract-ocr); its tests will be skipped"; fi; }
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "note: bubblewrap not installed (sudo apt-get install bubblewrap); code_exec runs with reduced isolation and its isolation tests are skipped"; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch is pinned: the CPU wheel, not gigabytes of CUDA packages.
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[all,dev]"
	# mcp-proxy, a third-party MCP server the tests reach over streamable HTTP, is built on the MCP SDK 1.x and we
	# on 2.x: it gets a venv of its own, as a user would install a server with pipx or uvx.
	$(PYTHON) -m venv $(VENV)/peers
	$(VENV)/peers/bin/pip install -q "mcp-proxy==0.13.0"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python run_demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests run_demo.py
	$(BIN)/ruff format --check src
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/orchestrator bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
