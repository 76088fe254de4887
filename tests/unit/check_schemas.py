#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check schemas/ against itself.

Every *.json schema is a valid draft 2020-12 schema; every example under
examples/<group>/<name>/valid/ validates against <group>/<name>.json; every
example under invalid/ is refused: either it is not strict JSON (then its
code must be invalid_json) or the schema rejects it -- unless the refusal is
one JSON Schema cannot express (listed in GAPS below, each with its reason).
The C decoder and encoders are checked against the same examples by
test_decode.c and test_encode.c, so the
schemas, the examples and the codec cannot drift apart silently.

Usage: check_schemas.py [SCHEMAS_DIR]   (default: $PARTREG_SCHEMAS, else
the schemas/ directory of this source tree). Works with python3-jsonschema
4.10 (Debian 12) and with later versions (the `referencing` library).
"""
import json
import os
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (apt-get install python3-jsonschema)")
    sys.exit(77)

# Refusals JSON Schema cannot express, by error code or by example file name.
GAPS_BY_CODE = {
    "invalid_interval": "start < end compares two fields",
    "payload_too_large": "a byte limit on the whole payload",
}
GAPS_BY_FILE = {
    # invalid_json: Python's parser accepts these; json-c + the codec do not.
    "invalid_json--nul-escape-in-key.json": "\\u0000 in a key",
    "invalid_json--metadata-number-overflow.json": "1e400 overflows a double",
    "invalid_json--nested-too-deep.json": "the codec's depth limit",
    # JSON Schema's "integer" is any number with a zero fraction (60.0,
    # 6e1); the codec requires integer syntax, as json-c types it.
    "invalid_field--ttl-double.json": "60.0 is an integer to JSON Schema",
    "invalid_field--ttl-exponent.json": "6e1 is an integer to JSON Schema",
    "invalid_field--fence-double.json": "7.0 is an integer to JSON Schema",
    "invalid_field--since-seq-double.json": "40.0 is an integer to JSON Schema",
    # Calendar and range rules a regular expression does not capture.
    "invalid_time--feb-30.json": "days per month",
    "invalid_time--feb-29-non-leap-year.json": "leap years",
    "invalid_time--before-year-1-after-offset.json": "the offset moves it before 0001",
    # maxLength counts characters, the agent counts bytes.
    "invalid_name--101-two-byte-chars.json": "byte length of UTF-8",
    "invalid_field--metadata-1025-bytes.json": "byte length of compact JSON",
    "invalid_field--metadata-nul-in-string.json": "\\u0000 nested in metadata",
}


class NotStrictJSON(ValueError):
    pass


def strict_load(data):
    """json.loads, refusing what RFC 8259 or the protocol refuses."""

    def no_constants(name):
        raise NotStrictJSON("not JSON: " + name)

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise NotStrictJSON("duplicate key")
        return dict(pairs)

    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotStrictJSON(str(e)) from e


def load_schemas(root):
    """{file URI: schema with that URI as $id}, for every schema file."""
    schemas = {}
    for path in sorted(root.rglob("*.json")):
        if "examples" in path.relative_to(root).parts:
            continue
        schema = strict_load(path.read_bytes())
        uri = path.resolve().as_uri()
        schemas[uri] = dict(schema, **{"$id": uri})
    return schemas


def make_validator(schemas, uri):
    cls = jsonschema.Draft202012Validator
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        registry = Registry().with_resources(
            (u, Resource.from_contents(s, default_specification=DRAFT202012))
            for u, s in schemas.items()
        )
        return cls(schemas[uri], registry=registry)
    except ImportError:
        resolver = jsonschema.RefResolver(base_uri=uri, referrer=schemas[uri], store=schemas)
        return cls(schemas[uri], resolver=resolver)


def main():
    default = pathlib.Path(__file__).resolve().parents[2] / "schemas"
    root = pathlib.Path(
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PARTREG_SCHEMAS") or default
    ).resolve()
    failures = []
    schemas = load_schemas(root)
    for uri, schema in schemas.items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            failures.append(f"{uri}: not a valid schema: {e.message}")

    counts = {"valid": 0, "invalid": 0, "gaps": 0}
    examples = root / "examples"
    for kind_dir in sorted(examples.glob("*/*/*")):
        group, name, kind = kind_dir.relative_to(examples).parts
        schema_path = root / group / (name + ".json")
        uri = schema_path.resolve().as_uri()
        if uri not in schemas:
            failures.append(f"{kind_dir}: no schema {schema_path}")
            continue
        validator = make_validator(schemas, uri)
        for path in sorted(kind_dir.glob("*.json")):
            rel = path.relative_to(examples)
            data = path.read_bytes()
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "valid":
                try:
                    errors = list(validator.iter_errors(strict_load(data)))
                except NotStrictJSON as e:
                    failures.append(f"{rel}: valid example is not strict JSON: {e}")
                    continue
                for err in errors:
                    failures.append(f"{rel}: {err.message} at {list(err.absolute_path)}")
                continue
            code = path.name.split("--")[0]
            try:
                instance = strict_load(data)
            except NotStrictJSON:
                if group == "cmd" and code != "invalid_json":
                    failures.append(f"{rel}: not strict JSON, so its code must be invalid_json")
                continue
            if validator.is_valid(instance):
                if code in GAPS_BY_CODE or path.name in GAPS_BY_FILE:
                    counts["gaps"] += 1
                else:
                    failures.append(f"{rel}: the schema accepts an invalid example")
    for f in failures:
        print("FAIL", f)
    print(
        f"{len(schemas)} schemas, {counts['valid']} valid and {counts['invalid']} invalid "
        f"examples ({counts['gaps']} refused only by the codec), {len(failures)} failures"
    )
    return 1 if failures or counts["valid"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
