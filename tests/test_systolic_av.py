"""Fast tests of the A' x V engine (block systolic-av): configuration, golden model, vectors."""

import numpy as np
import pytest

from damf.config import ConfigError, SystolicAVConfig, SystolicQKConfig
from damf.blocks import generate_vectors, load_vectors
from damf.golden import vectors
from damf.golden.systolic_qk import av_product, score_rows, scores_from_rows


def test_derived_counts():
    cfg = SystolicAVConfig(rows=3, cols=5, d_head=11, seq_len=7)
    assert (cfg.q_rows, cfg.k_rows, cfg.steps) == (7, 11, 7)
    assert (cfg.tile_rows, cfg.tile_cols, cfg.last_rows, cfg.last_cols) == (3, 3, 1, 1)
    assert cfg.score_beats == 7 * 3
    assert cfg.cycles == (9 - 1) * 7 + 7 + 5 + 1 + 1
    qk = SystolicQKConfig()
    assert (qk.q_rows, qk.k_rows, qk.steps) == (8, 8, 8)


def test_invalid():
    with pytest.raises(ConfigError, match=r"^cols must be at most d_head = 3, not 4$"):
        SystolicAVConfig(d_head=3)


def test_golden_and_stream_order():
    cfg = SystolicAVConfig(rows=2, cols=3, d_head=4, seq_len=5, q_width=5, k_width=4)
    a, v = vectors.random_av(cfg, np.random.default_rng(1))
    z = av_product(cfg, a, v)
    assert z.tolist() == [[sum(a[i][t] * v[t][j] for t in range(5)) for j in range(4)] for i in range(5)]
    assert scores_from_rows(cfg, score_rows(cfg, z)).tolist() == z.tolist()


def test_vector_file_round_trip(tmp_path):
    cfg = SystolicAVConfig(rows=2, cols=3, d_head=3, seq_len=4)
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(generate_vectors(cfg, seed=2, count=5)))
    loaded, inputs, expected = load_vectors(path, block="systolic-av")
    assert loaded == cfg and len(inputs["a"]) == len(expected["z"])
