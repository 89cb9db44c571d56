"""/openapi/v2: the Swagger 2.0 document, in JSON and in the protobuf form Go clients ask for.

kubectl and Helm validate manifests with a `fieldValidation` verifier that reads /openapi/v3
first and falls back to /openapi/v2 on any error other than "parameter unsupported"; the v2
client (client-go's `OpenAPISchema`) always requests the gnostic protobuf encoding and cannot
read JSON. So kubesim serves both, with the same content as its v3 index: for every kind, the
PATCH operation with the `fieldValidation` query parameter and its
`x-kubernetes-group-version-kind`, which tells the client that the server validates fields
itself. There are no `definitions`, so clients skip their own schema validation (a missing
model means "not validated", never "invalid"); kubesim's validation is `kubesim.validation`.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from kubesim.resources import RESOURCE_TYPES, ResourceType

_PROTOBUF_SUBTYPE: Final = "com.github.proto-openapi.spec.v2.v1.0+protobuf"
_TITLE: Final = "Kubernetes (kubesim)"
_VERSION: Final = "v1.32.0"


def protobuf_content_type(accept: str) -> str | None:
    """The Content-Type for a protobuf answer to `accept`, or None if JSON is wanted.

    client-go asks for the deprecated `...spec.v2@v1.0+protobuf`, which kube-openapi answers
    as `application/octet-stream`: "@" is not allowed in a media type, and Go's mime parser
    rejects a response that carries it."""
    if "spec.v2@v1.0+protobuf" in accept:
        return "application/octet-stream"
    if _PROTOBUF_SUBTYPE in accept:
        return f"application/{_PROTOBUF_SUBTYPE}"
    return None


def _patch_path(rt: ResourceType) -> str:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    return f"{prefix}{scope}/{rt.plural}/{{name}}"


def _served() -> list[ResourceType]:
    return [rt for rt in RESOURCE_TYPES if not rt.virtual]


def openapi_v2_document() -> dict[str, Any]:
    paths = {}
    for rt in _served():
        paths[_patch_path(rt)] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "consumes": ["application/merge-patch+json", "application/json-patch+json"],
                "produces": ["application/json"],
                "parameters": [
                    {
                        "uniqueItems": True,
                        "type": "string",
                        "description": "Ignore, Warn or Strict; kubesim validates the fields "
                        "it knows.",
                        "name": "fieldValidation",
                        "in": "query",
                    }
                ],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": rt.group,
                    "kind": rt.kind,
                    "version": rt.version,
                },
            }
        }
    return {"swagger": "2.0", "info": {"title": _TITLE, "version": _VERSION}, "paths": paths}


# --- protobuf (gnostic openapi_v2.Document; field numbers from OpenAPIv2.proto) -------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (strings and nested messages are all that is needed here)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + _varint(int(value)) if value else b""


def _named_any_yaml(name: str, yaml_text: str) -> bytes:
    # NamedAny{name=1, value=2: Any{yaml=2}}
    return _field(1, name) + _field(2, _field(2, yaml_text))


def _operation(rt: ResourceType) -> bytes:
    # QueryParameterSubSchema{in=2, description=3, name=4, type=6, unique_items=20}
    query = (
        _field(2, "query")
        + _field(3, "Ignore, Warn or Strict; kubesim validates the fields it knows.")
        + _field(4, "fieldValidation")
        + _field(6, "string")
        + _bool(20, True)
    )
    # ParametersItem{parameter=1: Parameter{non_body_parameter=2: NonBodyParameter{query=3}}}
    parameter = _field(1, _field(2, _field(3, query)))
    gvk = f'group: "{rt.group}"\nkind: {rt.kind}\nversion: {rt.version}\n'
    # Responses{response_code=1: NamedResponseValue{name=1, value=2: ResponseValue{
    #   response=1: Response{description=1}}}}
    responses = _field(1, _field(1, "200") + _field(2, _field(1, _field(1, "OK"))))
    # Operation{operation_id=5, produces=6, parameters=8, responses=9, vendor_extension=13}
    return (
        _field(5, f"patch{rt.kind}")
        + _field(6, "application/json")
        + _field(8, parameter)
        + _field(9, responses)
        + _field(13, _named_any_yaml("x-kubernetes-action", "patch\n"))
        + _field(13, _named_any_yaml("x-kubernetes-group-version-kind", gvk))
    )


@cache
def openapi_v2_protobuf() -> bytes:
    # Paths{path=2: NamedPathItem{name=1, value=2: PathItem{patch=8}}}
    paths = b"".join(
        _field(2, _field(1, _patch_path(rt)) + _field(2, _field(8, _operation(rt))))
        for rt in _served()
    )
    info = _field(1, _TITLE) + _field(2, _VERSION)
    # Document{swagger=1, info=2, paths=8}
    return _field(1, "2.0") + _field(2, info) + _field(8, paths)
