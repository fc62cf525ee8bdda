# SmartMirror: two commands do all set-up on a fresh machine.
#   make run   create .venv if missing, install, start the app (http://localhost:8501)
#   make test  the same set-up, then the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export GLOG_minloglevel ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==25.3"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

# Streamlit asks for an e-mail address on its very first run (not headless) and waits for an answer; answer it
# once, as its own prompt would with an empty line, so `make run` starts unattended on a fresh machine.
STREAMLIT_CREDENTIALS := $(HOME)/.streamlit/credentials.toml

run: $(STAMP)
	@test -f $(STREAMLIT_CREDENTIALS) || { mkdir -p $(dir $(STREAMLIT_CREDENTIALS)); \
		printf '[general]\nemail = ""\n' > $(STREAMLIT_CREDENTIALS); }
	$(VENV)/bin/streamlit run app.py --server.port 8501 --server.headless false

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
