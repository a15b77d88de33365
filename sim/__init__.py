"""cocotb testbenches (``tb_*.py``) and their pytest runners (``test_*.py``)."""
