"""Amaranth blocks of the DAMF attention datapath."""
