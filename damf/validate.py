"""JSON Schema checks of the files damf reads: ``BLOCK.json`` and ``damf-vectors/1`` files.

The schemas are ``docs/schemas/block.schema.json`` and ``docs/schemas/vectors.schema.json``
(JSON Schema draft 2020-12); the package carries identical copies in ``damf/schemas/`` so an
installed wheel validates the same way (``tests/test_schemas.py`` checks they are the same).
A violation is a :class:`~damf.errors.ConfigError` of one line, ``FILE: <json path>:
<message>``, for the command line to print as ``damf: error: ...``.
"""

import functools
import json
from pathlib import Path

import jsonschema

from .errors import ConfigError

__all__ = ["SCHEMAS", "schema", "check", "json_path"]

#: the schema files, by the kind of document they describe
SCHEMAS = {"block": "block.schema.json", "vectors": "vectors.schema.json"}
_HERE = Path(__file__).resolve().parent / "schemas"


@functools.cache
def schema(kind):
    """The parsed schema of ``kind`` (``"block"`` or ``"vectors"``)."""
    return json.loads((_HERE / SCHEMAS[kind]).read_text(encoding="utf-8"))


@functools.cache
def _validator(kind):
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema(kind))
    return cls(schema(kind))


def json_path(path):
    """``$.inputs.x[3]`` for the path ``["inputs", "x", 3]``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _shown(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _message(error):
    """One line for ``error`` that says what was expected and what was given."""
    v, expected, given = error.validator, error.validator_value, error.instance
    if v == "required":
        missing = [k for k in expected if k not in given]
        return f"must have a '{missing[0]}' member; it has: {', '.join(given) or 'none'}"
    if v == "dependentRequired":
        for key, needs in expected.items():
            missing = [k for k in needs if key in given and k not in given]
            if missing:
                return (f"must have a '{missing[0]}' member beside '{key}' (the description comes whole); "
                        f"it has: {', '.join(given)}")
    if v == "additionalProperties":
        extra = sorted(k for k in given if k not in error.schema.get("properties", {}))
        return f"has an unknown member '{extra[0]}'" if extra else error.message
    if v == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"must be {' or '.join(_TYPE_NAMES.get(t, t) for t in names)}, not {_shown(given)}"
    if v == "const":
        return f"must be {_shown(expected)}, not {_shown(given)}"
    if v == "enum":
        return f"must be one of {', '.join(map(_shown, expected))}, not {_shown(given)}"
    if v in ("minimum", "maximum"):
        return f"must be at {'least' if v == 'minimum' else 'most'} {expected}, not {_shown(given)}"
    if v in ("minItems", "minProperties", "minLength"):
        return f"must not be empty" if expected == 1 else error.message
    if v == "pattern":
        return f"must match {expected}, not {_shown(given)}"
    return " ".join(error.message.split())[:200]


_TYPE_NAMES = {"object": "a JSON object", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def check(doc, kind, what):
    """Raise :class:`ConfigError` ``"{what}: <json path>: <message>"`` for the first (most
    relevant) violation of schema ``kind`` in ``doc``; return ``doc`` when it conforms."""
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(doc))
    if error is None:
        return doc
    # inside oneOf / anyOf, the branch that got furthest says what was wrong
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    raise ConfigError(f"{what}: {json_path(error.absolute_path)}: {_message(error)}")
