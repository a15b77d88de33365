"""Configuration objects: presets, validation messages, exact derived widths."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from damf import config
from damf.blocks import BLOCKS
from damf.config import ConfigError, InnerProductConfig, PRESETS, product_range, signed_range_width

CONFIG = Path(config.__file__).resolve().parent


def test_presets():
    for name in PRESETS:
        cfg = InnerProductConfig.from_preset(name)
        assert cfg.d_model == PRESETS[name].d_model
    bert = InnerProductConfig.from_preset("bert-base")
    assert (bert.d_model, bert.rank) == (768, 1)


def test_presets_are_named_objects():
    assert PRESETS == {"default": config.DEFAULT, "bert-base": config.BERT_BASE}
    for name, preset in PRESETS.items():
        assert isinstance(preset, config.Preset) and preset.name == name and preset.description
        assert config.get_preset(name) is preset
        assert preset.d_model == preset.n_heads * preset.d_head
    with pytest.raises(ConfigError, match=r"^unknown preset 'huge'; expected one of: default, bert-base$"):
        config.get_preset("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.DEFAULT.d_model = 32


@pytest.mark.parametrize("block", BLOCKS)
def test_fields_are_typed(block):
    """Every field of every configuration has a real type (no strings standing in for one),
    and a value of another type is refused with one line naming the field."""
    cls = BLOCKS[block].config_cls
    allowed = (int, str, bool, tuple | None)
    for f in dataclasses.fields(cls):
        assert f.type in allowed, (block, f.name, f.type)
        assert f.metadata.get("doc"), (block, f.name)
    first_int = next(f.name for f in dataclasses.fields(cls) if f.type is int)
    with pytest.raises(ConfigError, match=rf"^{first_int} must be an integer, not '1'$"):
        cls.from_dict({first_int: "1"})


def test_configuration_package_imports_no_golden_model():
    """The layers point one way: the configuration package imports neither golden/ nor hdl/."""
    for path in CONFIG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                assert not any(part in target.split(".") for part in ("golden", "hdl", "sim", "blocks")), \
                    f"{path.name} imports {target}"


@pytest.mark.parametrize("kwargs, message", [
    ({"d_model": 0}, r"^d_model must be at least 1, not 0$"),
    ({"d_model": -4}, r"^d_model must be at least 1, not -4$"),
    ({"lanes": 0}, r"^lanes must be at least 1, not 0$"),
    ({"rank": 0}, r"^rank must be at least 1, not 0$"),
    ({"x_width": 1}, r"^x_width must be at least 2, not 1$"),
    ({"w_width": 0}, r"^w_width must be at least 2, not 0$"),
    ({"lanes": 17}, r"^lanes must be at most d_model = 16, not 17$"),
    ({"d_model": "16"}, r"^d_model must be an integer, not '16'$"),
    ({"d_model": 2.5}, r"^d_model must be an integer, not 2\.5$"),
    ({"d_model": True}, r"^d_model must be an integer, not True$"),
    ({"weights": "rom"}, r"^weights must be one of runtime, fixed, not 'rom'$"),
    ({"x_width": 32, "w_width": 32}, r"^x_width \+ w_width \+ log2\(d_model\) must give at most 62 output bits, not 68"),
    ({"u": ((1,) * 16,)}, r"^u may only be given with weights=fixed, not weights=runtime$"),
    ({"weights": "fixed", "u": ((1,) * 15,)}, r"^u\[0\] must hold d_model = 16 integers, not 15$"),
    ({"weights": "fixed", "u": ((1,) * 16, (1,) * 16)}, r"^u must hold 1 vectors \(one per rank\), not 2$"),
    ({"weights": "fixed", "v": ((128,) + (0,) * 15,)}, r"^v\[0\]\[0\] must be an integer in \[-128, 127\] \(w_width = 8\), not 128$"),
])
def test_invalid(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        InnerProductConfig(**kwargs)


def test_unknown_preset_and_key():
    with pytest.raises(ConfigError, match=r"^unknown preset 'tiny'; expected one of: default, bert-base$"):
        InnerProductConfig.from_preset("tiny")
    with pytest.raises(ConfigError, match=r"^unknown key 'width' for inner-product; expected one of: d_model, "):
        InnerProductConfig.build(assignments=["width=3"])
    with pytest.raises(ConfigError, match=r"^d_model must be an integer, not 'abc'$"):
        InnerProductConfig.build(assignments=["d_model=abc"])
    with pytest.raises(ConfigError, match=r"^--set expects key=value, not 'd_model'$"):
        InnerProductConfig.build(assignments=["d_model"])


def test_file_and_priority(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"d_model": 10, "lanes": 3}))
    cfg = InnerProductConfig.build(preset="bert-base", config_file=path, assignments=["lanes=5"])
    assert (cfg.d_model, cfg.lanes, cfg.x_width) == (10, 5, 8)
    # A BLOCK.json written by the generator loads back to the same configuration.
    fixed = InnerProductConfig(d_model=5, lanes=2, rank=2, weights="fixed", weight_seed=3)
    path.write_text(fixed.to_json())
    again = InnerProductConfig.from_file(path)
    assert again.fixed_vectors() == fixed.fixed_vectors()
    assert again.to_json() == fixed.to_json()


@pytest.mark.parametrize("text, message", [
    ("{", r"^config file '.*' is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2$"),
    ("[1, 2]", r"^a configuration must be a JSON object, not list$"),
    ('{"d_model": "x"}', r"^d_model must be an integer, not 'x'$"),
    ('{"block": "other", "config": {}}', r"^config file '.*' is for block 'other', not 'inner-product'$"),
])
def test_malformed_file(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        InnerProductConfig.from_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^cannot read config file '.*nope.json': No such file or directory$"):
        InnerProductConfig.from_file(tmp_path / "nope.json")


def test_signed_range_width_is_minimal():
    for lo in range(-70, 1):
        for hi in range(0, 70):
            w = signed_range_width(lo, hi)
            assert -(1 << (w - 1)) <= lo and hi < (1 << (w - 1))
            if w > 1:
                assert not (-(1 << (w - 2)) <= lo and hi < (1 << (w - 2)))


@pytest.mark.parametrize("x_width, w_width, d_model", [(2, 2, 1), (3, 5, 7), (8, 8, 16), (4, 3, 5)])
def test_out_width_is_exact(x_width, w_width, d_model):
    """Brute force over every product: the extreme sums fit, and one bit less would not."""
    cfg = InnerProductConfig(d_model=d_model, lanes=1, x_width=x_width, w_width=w_width)
    xs = range(-(1 << (x_width - 1)), 1 << (x_width - 1))
    ws = range(-(1 << (w_width - 1)), 1 << (w_width - 1))
    products = [x * w for x in xs for w in ws]
    assert (min(products), max(products)) == product_range(x_width, w_width)
    lo, hi = d_model * min(products), d_model * max(products)
    assert -(1 << (cfg.out_width - 1)) <= lo and hi < (1 << (cfg.out_width - 1))
    assert lo < -(1 << (cfg.out_width - 2)) or hi >= (1 << (cfg.out_width - 2))


def test_repr_names_every_changed_field():
    """One ``__repr__`` for every configuration (``BlockConfig``): the fields that differ from
    their defaults, so it cannot drift from the fields."""
    from damf.config import DamfHeadBlockConfig, ScoreConfig
    assert repr(InnerProductConfig()) == "InnerProductConfig()"
    assert repr(InnerProductConfig(d_model=5, weights="fixed", weight_seed=3)) == \
        "InnerProductConfig(d_model=5, weights='fixed', weight_seed=3)"
    assert repr(ScoreConfig(seq_len=7, parallel=3)) == "ScoreConfig(seq_len=7, parallel=3)"
    head = DamfHeadBlockConfig(mode="base2", causal=True)
    assert repr(head) == "DamfHeadBlockConfig(mode='base2', causal=True)"
    for cfg in (InnerProductConfig(d_model=5, lanes=2), ScoreConfig(seq_len=7, parallel=3), head):
        assert eval(repr(cfg), {type(cfg).__name__: type(cfg)}) == cfg
