# hdmap — set-up, demo and tests on a fresh Debian 12 machine.
#
#   make demo    install everything needed, then run the end-to-end demo
#   make test    install everything needed (test extras too), then run the test suite
#
# Both create .venv (hdmap with its extras) and .venv-tools (ASAM's OpenDRIVE
# checker, which pins numpy<2 and so cannot live beside hdmap), and install the
# Debian packages hdmap needs: libusb-1.0-0 (Open3D's wheel links it) and, for the
# tests, chromium (the QA-report test opens the report in headless Chromium).
# Run as root, or as a user with sudo.

PYTHON     ?= python3
VENV       := .venv
TOOLS      := .venv-tools
PY         := $(VENV)/bin/python
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PIP_FLAGS  := --disable-pip-version-check --no-input -q
DEMO_OUT   ?= demo-out
PYTEST_ARGS ?=

APT_DEMO := libusb-1.0-0
APT_TEST := libusb-1.0-0 chromium

.PHONY: demo test setup setup-test system-deps system-deps-test bench clean distclean

demo: system-deps $(VENV)/.installed
	$(VENV)/bin/hdmap demo --out $(DEMO_OUT)

test: system-deps-test $(VENV)/.installed-test $(TOOLS)/.installed
	HDMAP_QC_OPENDRIVE=$(abspath $(TOOLS))/bin/qc_opendrive $(PY) -m pytest $(PYTEST_ARGS)

setup: system-deps $(VENV)/.installed
setup-test: system-deps-test $(VENV)/.installed-test $(TOOLS)/.installed

# --- Debian packages (only what is missing; apt-get update only when needed) ---
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

system-deps:
	$(call apt_install,$(APT_DEMO))

system-deps-test:
	$(call apt_install,$(APT_TEST))

# --- Python environments ---
$(VENV)/.created:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hdmap needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	@touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml constraints.txt
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[test]'
	@touch $@

$(TOOLS)/.installed: constraints-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install $(PIP_FLAGS) -c constraints-tools.txt asam-qc-opendrive
	@touch $@

# --- benchmarks (not part of the tests; results go to benchmarks/results/) ---
bench: system-deps $(VENV)/.installed-test
	$(PY) benchmarks/io.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .hypothesis build *.egg-info

distclean: clean
	rm -rf $(VENV) $(TOOLS)
