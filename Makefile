# Clearinghouse: `make demo` runs a complete intake in a temporary directory,
# `make test` runs the test suite. Both set up what they need first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the tests and the demo use: gpg and its agent for every signature,
# dovecot for the IMAP door's tests, poppler-utils (pdftotext) to read rendered PDFs,
# fonts-dejavu-core for the font every PDF embeds (reports/fonts.py), chromium (driven by
# Playwright; chromium-driver for Selenium) to test the public site in a real browser, and
# a Java runtime for the Nu Html Checker that validates its pages offline.
SYSTEM_PACKAGES := gnupg gpg-agent dovecot-imapd poppler-utils fonts-dejavu-core \
                   chromium chromium-driver default-jre-headless
# Files (not commands) the packages above must have put in place.
SYSTEM_FILES := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: deps venv postgres demo test lint clean

## deps: install the system packages above if a tool or file is missing (as root; else say what to do)
deps:
	@missing=""; \
	for tool in gpg gpg-agent dovecot pdftotext chromium chromedriver java; do \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; \
	done; \
	for file in $(SYSTEM_FILES); do \
	  [ -f $$file ] || missing="$$missing $$file"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "deps: missing$$missing; installing $(SYSTEM_PACKAGES)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update && \
	  apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES); \
	else \
	  echo "deps: missing$$missing. Install as root:"; \
	  echo "  apt-get install --no-install-recommends $(SYSTEM_PACKAGES)"; \
	  echo "deps: continuing; tests that need them will be skipped or fail"; \
	fi

## venv: .venv with the project installed in editable mode, with the test extras
venv: deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  echo "venv: creating $(VENV)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --progress-bar off -e '.[test]'
	@touch $@

## demo: a complete run (teams, keys, a signed report, receipt, monthly PDFs, the public
## site) in a temp dir, deleted afterwards; `make demo KEEP=1` keeps it to look at
demo: venv
	$(BIN)/clearinghouse demo $(if $(KEEP),--keep)

## postgres: a PostgreSQL on 127.0.0.1:5432 with a `test` database, trust for local TCP
## (as root: installs and starts Debian's postgresql; else checks it is there)
postgres:
	@bash .ci/postgres

## test: the whole test suite twice, on SQLite and then on PostgreSQL (several gateway
## instances sharing a store are tested there); pass options with PYTEST_ARGS="-k smtp -x"
test: venv postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	CLEARINGHOUSE_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy --strict, configured in pyproject.toml
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
