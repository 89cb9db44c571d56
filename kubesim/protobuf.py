"""Reading Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).

Go clients send protobuf for built-in kinds: kubectl's typed clients (`kubectl create role`,
`create rolebinding`, `create namespace`, `auth can-i`, `create token`...) and client-go users
such as Helm's release storage (Secrets). They also Accept JSON, so kubesim answers in JSON.

Wire format: the 4-byte magic `k8s\\0`, then a `runtime.Unknown` envelope (1: typeMeta
{apiVersion, kind}, 2: raw) whose `raw` is the object's own message. The object is turned into
the JSON form the rest of kubesim works on, following the schemas in `protobuf_schemas`.
A field number a schema does not know is refused (415) rather than dropped, so nothing a client
sent is silently lost; so is a kind without a schema.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Final

from kubesim import errors
from kubesim.protobuf_pods import POD_SCHEMAS
from kubesim.protobuf_schemas import DELETE_OPTIONS, SCHEMAS, Inline, List, Schema

PROTOBUF: Final = "application/vnd.kubernetes.protobuf"
_MAGIC: Final = b"k8s\x00"
_ACCEPTED: Final = "application/json, application/yaml"
_ENVELOPE: Final[Schema] = {
    1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")}),
    2: ("raw", "bytes"),
    3: ("contentEncoding", "string"),
    4: ("contentType", "string"),
}
_KEY_VALUE: Final[Schema] = {1: ("key", "string"), 2: ("value", "string")}
_KEY_BYTES: Final[Schema] = {1: ("key", "string"), 2: ("value", "bytes")}
_KEY_EXTRA: Final[Schema] = {1: ("key", "string"), 2: ("value", {1: ("items", "strings")})}
_TIME: Final[Schema] = {1: ("seconds", "int"), 2: ("nanos", "int")}
# Map entries are messages of (1: key, 2: value).
_MAP_ENTRIES: Final[dict[str, Schema]] = {
    "map": _KEY_VALUE,
    "bytesmap": _KEY_BYTES,
    "extra": _KEY_EXTRA,
    "timemap": {1: ("key", "string"), 2: ("value", "time")},
    "quantitymap": {1: ("key", "string"), 2: ("value", "quantity")},
}
_INT_OR_STRING: Final[Schema] = {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")}


class _Malformed(ValueError):
    pass


class _UnknownField(ValueError):
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
        if shift > 63:
            raise _Malformed("varint too long")


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
        else:
            # Kubernetes messages only use varints and length-delimited fields.
            raise _Malformed(f"unsupported wire type {wire}")
    return fields


def _packed(data: bytes) -> list[int]:
    numbers, pos = [], 0
    while pos < len(data):
        number, pos = _varint(data, pos)
        numbers.append(number)
    return numbers


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind in ("int", "int?"):
        if not isinstance(value, int):
            raise _Malformed("expected a varint")
        return _signed(value)
    if kind in ("bool", "bool?"):
        if not isinstance(value, int):
            raise _Malformed("expected a varint")
        return bool(value)
    if not isinstance(value, bytes):
        raise _Malformed("expected a length-delimited field")
    if kind in ("string", "string?"):
        return _text(value)
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "time":
        moment = _decode(value, _TIME)
        seconds = int(moment.get("seconds", 0))
        if seconds == 0 and not moment.get("nanos"):
            return None  # Go's zero Time, which JSON writes as null
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "intorstr":
        # intstr.IntOrString: 1 type (0 int, 1 string), 2 intVal, 3 strVal.
        parts = _decode(value, _INT_OR_STRING)
        return parts.get("strVal", "") if parts.get("type") == 1 else parts.get("intVal", 0)
    if kind == "quantity":
        # A zero Quantity (an empty message) is "0" in JSON.
        return _decode(value, {1: ("string", "string")}).get("string") or "0"
    if kind == "fields":
        raw = _fields(value)
        return json.loads(next((v for n, v in raw if n == 1 and isinstance(v, bytes)), b"{}"))
    raise _Malformed(f"unknown schema type {kind}")


def _is_unset(kind: object, value: Any) -> bool:
    """Go value fields at their zero value are what JSON's omitempty leaves out."""
    if value is None:
        return True
    return (kind == "string" and value == "") or (kind in ("int", "bool") and not value)


def _decode(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            raise _UnknownField(f"field number {number}")
        name, kind = schema[number]
        if isinstance(kind, Inline):
            if not isinstance(value, bytes):
                raise _Malformed(f"{name}: expected a message")
            out.update(_decode(value, kind.schema))
        elif isinstance(kind, List):
            if not isinstance(value, bytes):
                raise _Malformed(f"{name}: expected a message")
            out.setdefault(name, []).append(_decode(value, kind.item))
        elif isinstance(kind, dict):
            if not isinstance(value, bytes):
                raise _Malformed(f"{name}: expected a message")
            out[name] = _decode(value, kind)
        elif kind == "ints":
            # A repeated int64: one varint per entry, or packed into one length-delimited field.
            numbers = [value] if isinstance(value, int) else _packed(value)
            out.setdefault(name, []).extend(_signed(n) for n in numbers)
        elif kind == "strings":
            if not isinstance(value, bytes):
                raise _Malformed(f"{name}: expected a string")
            out.setdefault(name, []).append(_text(value))
        elif kind in _MAP_ENTRIES:
            if not isinstance(value, bytes):
                raise _Malformed(f"{name}: expected a map entry")
            entry = _decode(value, _MAP_ENTRIES[kind])
            item = entry.get("value", {} if kind == "extra" else "")
            if kind == "extra":
                item = item.get("items", [])
            out.setdefault(name, {})[entry.get("key", "")] = item
        else:
            decoded = _scalar(kind, value)
            if _is_unset(kind, decoded):
                out.pop(name, None)
            else:
                out[name] = decoded
    return out


def decode_body(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf request body.

    415 for a kind (or a field of a kind) kubesim has no schema for, 400 for bytes that are
    not protobuf at all."""
    if not body.startswith(_MAGIC):
        raise errors.bad_request("the protobuf body does not start with the Kubernetes magic")
    kind = ""
    try:
        envelope = _decode(body[len(_MAGIC) :], _ENVELOPE)
        type_meta = envelope.get("typeMeta") or {}
        api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
        schema = SCHEMAS.get((api_version, kind)) or POD_SCHEMAS.get((api_version, kind))
        if kind == "DeleteOptions":
            schema = DELETE_OPTIONS
        if schema is None:
            raise errors.unsupported_media_type(_ACCEPTED)
        raw = base64.b64decode(envelope.get("raw", ""))
        obj = _decode(raw, schema)
    except _UnknownField as exc:
        raise errors.ApiError(
            415,
            "UnsupportedMediaType",
            f"kubesim cannot read {exc} of a protobuf {kind or 'object'}; send JSON",
        ) from None
    except (_Malformed, UnicodeDecodeError, ValueError) as exc:
        raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
