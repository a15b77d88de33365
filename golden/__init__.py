"""NumPy golden models (bit-exact integer models of each block, and float references).

Nothing here imports Amaranth or cocotb.
"""
