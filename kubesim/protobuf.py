"""Just enough Kubernetes protobuf to read the few request bodies kubectl only sends that way.

kubesim speaks JSON, and protobuf bodies are answered with 415 (clients must cope with a server
that does not negotiate protobuf). The exception is the handful of create-only kinds whose
typed clients in kubectl always send protobuf (`kubectl auth can-i` and `--list`,
`kubectl auth whoami`, `kubectl create token`); without them those commands could not work
against kubesim at all. Responses are still JSON, which those clients accept.

Wire format: the 4-byte magic `k8s\\0`, then a `runtime.Unknown` envelope (typeMeta, raw) whose
`raw` is the object's own protobuf message.
"""

from __future__ import annotations

from typing import Any, Final

from kubesim import errors

PROTOBUF: Final = "application/vnd.kubernetes.protobuf"
_MAGIC: Final = b"k8s\x00"

# A schema maps field numbers to (json name, type); a type is "string", "int", "bool",
# "strings" (repeated string), "map" (map<string,string>), "extra" (map<string, {items}>)
# or a nested schema.
Schema = dict[int, tuple[str, Any]]

_OBJECT_META: Final[Schema] = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
}
_RESOURCE_ATTRIBUTES: Final[Schema] = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}
_NON_RESOURCE_ATTRIBUTES: Final[Schema] = {1: ("path", "string"), 2: ("verb", "string")}
_ACCESS_SPEC: Final[Schema] = {
    1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
    3: ("user", "string"),
    4: ("groups", "strings"),
    5: ("extra", "extra"),
    6: ("uid", "string"),
}
_BOUND_OBJECT: Final[Schema] = {
    1: ("kind", "string"),
    2: ("apiVersion", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
}
_SCHEMAS: Final[dict[tuple[str, str], Schema]] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        1: ("metadata", _OBJECT_META),
        2: ("spec", _ACCESS_SPEC),
    },
    ("authorization.k8s.io/v1", "SubjectAccessReview"): {
        1: ("metadata", _OBJECT_META),
        2: ("spec", _ACCESS_SPEC),
    },
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): {
        1: ("metadata", _OBJECT_META),
        2: ("spec", _ACCESS_SPEC),
    },
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): {
        1: ("metadata", _OBJECT_META),
        2: ("spec", {1: ("namespace", "string")}),
    },
    ("authentication.k8s.io/v1", "SelfSubjectReview"): {1: ("metadata", _OBJECT_META)},
    ("authentication.k8s.io/v1", "TokenRequest"): {
        1: ("metadata", _OBJECT_META),
        2: (
            "spec",
            {
                1: ("audiences", "strings"),
                3: ("boundObjectRef", _BOUND_OBJECT),
                4: ("expirationSeconds", "int"),
            },
        ),
    },
}


class _Malformed(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            fields.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _Malformed("truncated field")
            fields.append((number, data[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")
    return fields


def _decode(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == "int" and isinstance(value, int):
            out[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool" and isinstance(value, int):
            out[name] = bool(value)
        elif isinstance(value, bytes):
            if kind == "string":
                out[name] = value.decode()
            elif kind == "strings":
                out.setdefault(name, []).append(value.decode())
            elif kind == "map":
                entry = _decode(value, {1: ("k", "string"), 2: ("v", "string")})
                out.setdefault(name, {})[entry.get("k", "")] = entry.get("v", "")
            elif kind == "extra":
                entry = _decode(value, {1: ("k", "string"), 2: ("v", {1: ("items", "strings")})})
                out.setdefault(name, {})[entry.get("k", "")] = entry.get("v", {}).get("items", [])
            elif isinstance(kind, dict):
                out[name] = _decode(value, kind)
    return out


def decode_body(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf request body; 415 for kinds kubesim cannot read."""
    unsupported = errors.unsupported_media_type("application/json, application/yaml")
    if not body.startswith(_MAGIC):
        raise unsupported
    try:
        envelope = _decode(
            body[len(_MAGIC) :],
            {1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")})},
        )
        raw = next((v for n, v in _fields(body[len(_MAGIC) :]) if n == 2), b"")
    except (_Malformed, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from None
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    schema = _SCHEMAS.get((api_version, kind))
    if schema is None or not isinstance(raw, bytes):
        raise unsupported
    try:
        obj = _decode(raw, schema)
    except (_Malformed, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
