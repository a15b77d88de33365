"""The practical limits (damf/limits.py): estimates that refuse absurd sizes, and progress."""

import io
import time

import pytest

from damf.blocks import BLOCKS
from damf.config import ConfigError, PRESETS
from damf import limits


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_block_is_within_the_generate_budget(preset):
    """The presets' blocks (and a bert-base DAMF head at full rank) are estimated well inside
    the budget: the limit refuses only what could not finish."""
    for block in BLOCKS.values():
        cfg = block.config_cls.from_preset(preset)
        assert 1 <= limits.check_generate(cfg) < limits.GENERATE_BUDGET_S / 10, block.name
    full = BLOCKS["damf-head"].config_cls.build(preset="bert-base", assignments=["rank=64"])
    assert limits.check_generate(full) < limits.GENERATE_BUDGET_S / 2


def test_generate_estimate_names_the_largest_part():
    cfg = BLOCKS["score"].config_cls.build(assignments=["seq_len=65536", "parallel=65536"])
    with pytest.raises(ConfigError, match=r"^score with this configuration would take about [\d.]+ minutes to "
                                          r"generate \(mostly its score multipliers\); at most about 5.0 minutes"):
        limits.check_generate(cfg)


def test_golden_count_limit_scales_with_the_block():
    small = [BLOCKS["inner-product"].config_cls.from_preset("default")]
    limits.check_golden_count(small, 64)
    with pytest.raises(ConfigError, match=r"^--count 1000000000 would need about [\d.]+ TiB of memory; "
                                          r"at most \d+ are allowed here$"):
        limits.check_golden_count(small, 10 ** 9)
    # the largest allowed count is allowed, one more is not
    per = limits.vector_values_per_count(small[0]) * limits._BYTES_PER_VALUE
    top = limits.MEMORY_BUDGET_BYTES // per
    limits.check_golden_count(small, top)
    with pytest.raises(ConfigError):
        limits.check_golden_count(small, top + 1)


def test_accuracy_limits():
    assert limits.check_accuracy(length=8, d_model=32, seeds=3, modes=3) > 0
    with pytest.raises(ConfigError, match="would need about 384 GiB of memory"):
        limits.check_accuracy(length=65536, d_model=32, seeds=1, modes=3)
    with pytest.raises(ConfigError, match=r"^--seeds 100000000 would take about \d+ days"):
        limits.check_accuracy(length=8, d_model=32, seeds=10 ** 8, modes=3)


def test_heartbeat_speaks_only_when_work_is_long():
    out = io.StringIO()
    with limits.Heartbeat("quick", every=0.5, stream=out):
        pass
    assert out.getvalue() == ""
    count = [0]
    with limits.Heartbeat(lambda: f"step {count[0]}", every=0.05, estimate=100, stream=out):
        for count[0] in range(1, 4):
            time.sleep(0.06)
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("step ") and line.endswith("left)") for line in lines)
    assert "about" in lines[0]


def test_human_units():
    assert limits.human_seconds(30) == "30 s"
    assert limits.human_seconds(3 * 3600) == "3.0 hours" and limits.human_seconds(30 * 3600) == "30 hours"
    assert limits.human_bytes(119 * 2 ** 30) == "119 GiB"


def test_cycle_model_of_a_long_load_completes():
    """A head whose X load is far longer than its rows (d_model 65536 over 4 lanes: 16,384
    beats a token) has a cycle model, not a "no progress" error: the load sets the interval."""
    cfg = BLOCKS["damf-head"].config_cls.build(assignments=["d_model=65536"])
    assert cfg.head_interval == cfg.inner_product.beats * cfg.seq_len
