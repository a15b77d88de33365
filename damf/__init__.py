"""DAMF attention: RTL generators, golden models and testbenches.

The distribution installs one import name, ``damf``:

* ``damf.hdl``    -- Amaranth blocks (folder ``hdl/``);
* ``damf.golden`` -- NumPy golden models and golden vectors (folder ``golden/``);
* ``damf.sim``    -- cocotb testbenches and their runners (folder ``sim/``);
* ``damf.config``, ``damf.blocks``, ``damf.cli`` -- configuration, block registry, CLI.
"""

__version__ = "0.1.0"
