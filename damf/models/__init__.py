"""Trained transformer models: the MiniLM encoder (``minilm``), DAMF evaluated on it
(``eval``), DAMF fine-tuning (``finetune``) and the damf-head of one real head
(``real_head``, behind ``damf minilm-head`` and ``damf import``).

Research code, built on the bit-exact models of :mod:`damf.golden`; it needs NumPy only
(``tokenizers`` for sentences), never Amaranth or cocotb.
"""
