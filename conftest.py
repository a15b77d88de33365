"""pytest options shared by tests/ and sim/.

``--sim icarus|verilator|all`` picks the simulators the cocotb runners use (``make sim
SIM=...`` passes it; ``make test`` uses all).  Any test with a ``simulator`` argument is run
once per selected simulator.
"""

import os

SIMULATORS = ("icarus", "verilator")


def pytest_addoption(parser):
    parser.addoption("--sim", default=os.environ.get("SIM") or "all",
                     choices=SIMULATORS + ("all",), help="simulator for cocotb tests (default: all)")


def pytest_generate_tests(metafunc):
    if "simulator" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--sim")
        metafunc.parametrize("simulator", SIMULATORS if choice == "all" else (choice,))
