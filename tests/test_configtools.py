"""Tests for the generic typed-dataclass config layer (dnmsnn.train.configtools)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnmsnn.errors import ConfigError, DnmsnnError
from dnmsnn.train.configtools import (
    apply_overrides,
    dump_yaml,
    from_dict,
    load_config,
    load_yaml,
    parse_override,
    to_dict,
)

# ---------------------------------------------------------------------------------------------------
# Small config classes (module level so that typing.get_type_hints can resolve the string annotations)
# ---------------------------------------------------------------------------------------------------

VALIDATE_CALLS: list[str] = []


@dataclass
class Optim:
    lr: float = 0.1
    momentum: float = 0.9
    milestones: list[int] = field(default_factory=lambda: [30, 60])
    kind: Literal["sgd", "adam"] = "sgd"
    weight_decay: Optional[float] = None  # noqa: UP045 - Optional must keep working

    def validate(self) -> None:
        VALIDATE_CALLS.append("optim")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}; use e.g. lr=0.1")


@dataclass
class Model:
    name: str = "lif"
    hidden: tuple[int, ...] = (128, 64)
    tau: float = 2.0
    threshold: float | None = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Data:
    root: str
    batch_size: int = 32


@dataclass
class Top:
    seed: int = 0
    optim: Optim = field(default_factory=Optim)
    model: Model = field(default_factory=Model)
    tags: list[str] = field(default_factory=list)
    anything: Any = None
    verbose: bool = False


@dataclass
class WithRequired:
    data: Data
    seed: int = 1


# ---------------------------------------------------------------------------------------------------
# from_dict / to_dict
# ---------------------------------------------------------------------------------------------------


def test_defaults_and_round_trip() -> None:
    cfg = from_dict(Top, {})
    assert cfg == Top()
    cfg = from_dict(
        Top,
        {
            "seed": 3,
            "optim": {"lr": 0.01, "milestones": [5, 20], "kind": "adam", "weight_decay": 1e-4},
            "model": {"hidden": [10, 20, 30], "threshold": None, "extra": {"a": [1, 2], "b": {"c": None}}},
            "tags": ["x", "y"],
            "anything": {"free": [1, "two"]},
            "verbose": True,
        },
    )
    assert cfg.optim.kind == "adam"
    assert cfg.model.hidden == (10, 20, 30)
    assert isinstance(cfg.model.hidden, tuple)
    assert cfg.model.threshold is None
    assert cfg.model.extra == {"a": [1, 2], "b": {"c": None}}
    plain = to_dict(cfg)
    assert plain["model"]["hidden"] == [10, 20, 30]
    assert isinstance(plain["optim"], dict)
    assert from_dict(Top, plain) == cfg


def test_int_is_converted_to_float() -> None:
    cfg = from_dict(Top, {"optim": {"lr": 1, "weight_decay": 0}, "model": {"threshold": 2}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert isinstance(cfg.optim.weight_decay, float)
    assert isinstance(cfg.model.threshold, float)


def test_unknown_key_lists_valid_keys_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(Top, {"optim": {"lrr": 0.1}})
    msg = str(info.value)
    assert "optim.lrr" in msg
    for key in ("lr", "momentum", "milestones", "kind", "weight_decay"):
        assert key in msg
    assert "did you mean 'lr'" in msg.lower()


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'optimm'.*Did you mean 'optim'"):
        from_dict(Top, {"optimm": {}})
    with pytest.raises(ConfigError, match="unknown key 'zzz'") as info:
        from_dict(Top, {"zzz": 1})
    assert "did you mean" not in str(info.value).lower()


@pytest.mark.parametrize(
    "data, path, expected",
    [
        ({"optim": {"lr": "fast"}}, "optim.lr", "float"),
        ({"optim": {"lr": True}}, "optim.lr", "float"),
        ({"seed": True}, "seed", "int"),
        ({"seed": [1]}, "seed", "int"),
        ({"seed": 1.5}, "seed", "int"),
        ({"tags": {"a": 1}}, "tags", "list"),
        ({"tags": "abc"}, "tags", "list"),
        ({"tags": ["a", 2]}, "tags[1]", "str"),
        ({"optim": {"milestones": [1, "b"]}}, "optim.milestones[1]", "int"),
        ({"model": {"name": 5}}, "model.name", "str"),
        ({"model": {"extra": [1]}}, "model.extra", "mapping"),
        ({"model": 3}, "model", "mapping"),
        ({"verbose": "yes"}, "verbose", "bool"),
        ({"verbose": 1}, "verbose", "bool"),
        ({"optim": {"weight_decay": "x"}}, "optim.weight_decay", "float"),
    ],
)
def test_wrong_types(data: dict, path: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(Top, data)
    msg = str(info.value)
    assert f"'{path}'" in msg
    assert expected in msg
    assert "got" in msg


def test_str_for_float_names_value() -> None:
    with pytest.raises(ConfigError, match=r"'optim\.lr'.*'fast'"):
        from_dict(Top, {"optim": {"lr": "fast"}})


def test_literal_rejection_lists_options() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(Top, {"optim": {"kind": "adamw"}})
    msg = str(info.value)
    assert "optim.kind" in msg and "'sgd'" in msg and "'adam'" in msg and "'adamw'" in msg


def test_missing_required_field() -> None:
    with pytest.raises(ConfigError, match=r"missing required key.*'data\.root'"):
        from_dict(WithRequired, {"data": {"batch_size": 4}})
    with pytest.raises(ConfigError, match=r"'data'"):
        from_dict(WithRequired, {})
    assert from_dict(WithRequired, {"data": {"root": "/tmp"}}).data.root == "/tmp"


def test_non_mapping_and_non_string_keys() -> None:
    with pytest.raises(ConfigError, match="top level"):
        from_dict(Top, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="optim"):
        from_dict(Top, {"optim": {1: 2}})


def test_validate_called_for_nested_sections() -> None:
    VALIDATE_CALLS.clear()
    from_dict(Top, {"optim": {"lr": 0.5}})
    assert VALIDATE_CALLS == ["optim"]
    with pytest.raises(ConfigError, match=r"optim.*lr must be > 0"):
        from_dict(Top, {"optim": {"lr": 0}})
    with pytest.raises(ConfigError, match=r"lr must be > 0"):
        from_dict(Top, {"optim": {"lr": -1.0}})


def test_to_dict_rejects_non_dataclass() -> None:
    with pytest.raises(ConfigError):
        to_dict({"a": 1})


# ---------------------------------------------------------------------------------------------------
# overrides
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("a.b=1e-3", ["a", "b"], 0.001),
        ("a=3E5", ["a"], 300000.0),
        ("a=.5", ["a"], 0.5),
        ("a=-2.5e-2", ["a"], -0.025),
        ("a=1.0e3", ["a"], 1000.0),
        ("a=7", ["a"], 7),
        ("a=[5, 20]", ["a"], [5, 20]),
        ("a=true", ["a"], True),
        ("a=False", ["a"], False),
        ("a=null", ["a"], None),
        ("a=adam", ["a"], "adam"),
        ("a='1e-3'", ["a"], "1e-3"),
        ("a=x=y", ["a"], "x=y"),
        (" a.b = 2 ", ["a", "b"], 2),
        ("a={x: 1}", ["a"], {"x": 1}),
    ],
)
def test_parse_override(text: str, key: list[str], value: Any) -> None:
    got_key, got_value = parse_override(text)
    assert got_key == key
    assert got_value == value
    assert type(got_value) is type(value)


@pytest.mark.parametrize("text", ["optim.lr", "=3", " =3", "a..b=1", ".a=1", "a.=1", "a=[1, 2"])
def test_malformed_override(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    msg = str(info.value)
    assert "=" in msg


def test_malformed_override_shows_example() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lr=1e-3"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match=r"e\.g\."):
        parse_override("=1")


def test_apply_overrides() -> None:
    base = {"optim": {"lr": 0.1}, "seed": 1}
    out = apply_overrides(base, ["optim.lr=1e-3", "optim.milestones=[5, 20]", "verbose=true",
                                 "model.threshold=null", "model.extra.deep.key=3"])
    assert base == {"optim": {"lr": 0.1}, "seed": 1}  # input untouched
    assert out["optim"] == {"lr": 0.001, "milestones": [5, 20]}
    assert out["verbose"] is True
    assert out["model"] == {"threshold": None, "extra": {"deep": {"key": 3}}}
    cfg = from_dict(Top, out)
    assert cfg.optim.lr == 0.001 and cfg.optim.milestones == [5, 20]
    assert cfg.model.threshold is None
    assert cfg.model.extra == {"deep": {"key": 3}}


def test_apply_overrides_through_a_value() -> None:
    with pytest.raises(ConfigError, match=r"'seed' is a value"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_override_unknown_key_is_caught_by_from_dict() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrate.*Did you mean"):
        load_config(Top, None, ["optim.lrate=0.1"])


# ---------------------------------------------------------------------------------------------------
# YAML files
# ---------------------------------------------------------------------------------------------------


def test_load_config_from_yaml(tmp_path) -> None:
    p = tmp_path / "cfg.yaml"
    p.write_text("seed: 4\noptim:\n  lr: 1e-3\n  kind: adam\nmodel:\n  hidden: [8, 4]\n")
    cfg = load_config(Top, p, ["optim.lr=2e-3"])
    assert cfg.seed == 4 and cfg.optim.kind == "adam" and cfg.optim.lr == 0.002
    assert cfg.model.hidden == (8, 4)
    assert load_config(Top, str(p)).optim.lr == 0.001
    assert load_config(Top, None) == Top()


def test_dump_and_reload(tmp_path) -> None:
    cfg = from_dict(Top, {"optim": {"lr": 1e-5, "weight_decay": 1e-4}, "model": {"extra": {"k": [1, 2]}}})
    p = tmp_path / "sub" / "out.yaml"
    dump_yaml(cfg, p)
    text = p.read_text()
    assert text.index("seed") < text.index("optim") < text.index("model")  # field order kept
    assert load_config(Top, p) == cfg


def test_empty_yaml(tmp_path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert load_yaml(p) == {}
    p.write_text("# only a comment\n")
    assert load_yaml(p) == {}


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        load_yaml(tmp_path)


def test_yaml_syntax_error_names_line(tmp_path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("seed: 1\noptim:\n  lr: [0.1\n  kind: sgd\nmodel: {\n")
    with pytest.raises(ConfigError, match=r"line \d+") as info:
        load_yaml(p)
    assert "bad.yaml" in str(info.value)
    p.write_text("a: 1\nb: 2\n  c: 3\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_yaml(p)


def test_yaml_top_level_not_mapping(tmp_path) -> None:
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(p)


def test_yaml_duplicate_key(tmp_path) -> None:
    p = tmp_path / "dup.yaml"
    p.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'seed'.*line 1"):
        load_yaml(p)


def test_errors_are_value_errors() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, DnmsnnError)


# ---------------------------------------------------------------------------------------------------
# property: arbitrary JSON-like input either builds the object or raises ConfigError
# ---------------------------------------------------------------------------------------------------

_KEYS = sorted(
    {f.name for cls in (Top, Optim, Model) for f in dataclasses.fields(cls)} | {"lrr", "x", "extra", "deep"}
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["sgd", "adam", "lif"])
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)
_sections = st.fixed_dictionaries(
    {},
    optional={
        "seed": _json,
        "optim": st.dictionaries(st.sampled_from(_KEYS), _json, max_size=5) | _json,
        "model": st.dictionaries(st.sampled_from(_KEYS), _json, max_size=5) | _json,
        "tags": _json,
        "anything": _json,
        "verbose": _json,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_sections | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), _json, max_size=5))
def test_from_dict_never_raises_other_errors(data: dict) -> None:
    try:
        cfg = from_dict(Top, data)
    except ConfigError as exc:
        assert str(exc)
        return
    assert isinstance(cfg, Top)
    again = from_dict(Top, to_dict(cfg))
    assert to_dict(again) == to_dict(cfg) or _has_nan(to_dict(cfg))


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return value != value
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=30))
def test_parse_override_never_raises_other_errors(text: str) -> None:
    try:
        parse_override(text)
    except ConfigError:
        pass
