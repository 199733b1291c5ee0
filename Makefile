# Two commands matter to a new user: `make demo` and `make test` (README).
# Everything installs into ./.venv; nothing is needed beyond Python >= 3.11 and make.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: install demo lint test test-ui bench chaos lab clean help

help:
	@echo "make demo    run the runbooks end to end on the bundled simulator (installs first)"
	@echo "make test    lint, then run the whole test suite (installs first)"
	@echo "make test-ui the notebooks in JupyterLab and the HTML audit trail, in Chromium (docs/ui-tests.md)"
	@echo "make lint    ruff check (configured in pyproject.toml)"
	@echo "make bench   speed and memory benchmarks"
	@echo "make chaos   kill and lost-answer trials of the transfer at every call that changes the pool"
	@echo "make lab     open JupyterLab on notebooks/"
	@echo "make install create .venv and install the suite with its test extras"

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: install
	$(VENV)/bin/runbook demo

lint: install
	$(VENV)/bin/ruff check

test: lint
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# The browser tests need Chromium from the system (Debian's chromium package) and the [ui] extra.
CHROMIUM ?= $(or $(RUNBOOK_CHROMIUM),$(wildcard /usr/bin/chromium),$(shell command -v chromium 2>/dev/null))
UI_STAMP  = $(VENV)/.ui-installed-stamp

test-ui:
	@test -n "$(CHROMIUM)" && test -x "$(CHROMIUM)" || { echo "error: make test-ui needs Chromium: as root, apt-get update && apt-get install -y chromium (or set RUNBOOK_CHROMIUM to a Chromium binary)"; exit 1; }
	@$(MAKE) --no-print-directory $(UI_STAMP)
	RUNBOOK_CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests/ui -p no:cacheprovider

$(UI_STAMP): $(STAMP)
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[test,ui]'
	@touch $(UI_STAMP)

bench: install
	$(PY) bench/run.py

chaos: install
	$(PY) -m tests.chaos_trials --json outputs/chaos-trials.json

lab: install
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
