"""/openapi/v2 and /openapi/v3: what kubectl's and Helm's field-validation verifier reads.

For every served kind the documents must hold a PATCH operation carrying the `fieldValidation`
query parameter and the kind's `x-kubernetes-group-version-kind`; Go clients read v2 only in
its protobuf form, which the real kubectl must be able to decode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubesim.pytest_plugin import KubesimHandle
from tests.support.kubesim_clients import kubectl, raw_http

_PROTOBUF_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """Top-level protobuf fields (varint and length-delimited only)."""
    out: list[tuple[int, bytes | int]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    while pos < len(data):
        key = varint()
        if key & 7 == 0:
            out.append((key >> 3, varint()))
        else:
            size = varint()
            out.append((key >> 3, data[pos : pos + size]))
            pos += size
    return out


def _field(data: bytes | int, *path: int) -> list[bytes]:
    """Every value at `path` (field numbers, nested messages) inside `data`."""
    assert isinstance(data, bytes)
    found = [value for number, value in _fields(data) if number == path[0]]
    if len(path) == 1:
        return [v for v in found if isinstance(v, bytes)]
    return [inner for value in found for inner in _field(value, *path[1:])]


def _namespace_patch(document: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"]["/api/v1/namespaces/{name}"]["patch"]
    return operation


def test_openapi_v2_json_declares_server_side_field_validation(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.get("/openapi/v2")

    document = response.json()
    assert document["swagger"] == "2.0"
    operation = _namespace_patch(document)
    assert operation["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "Namespace",
        "version": "v1",
    }
    assert {"name": "fieldValidation", "in": "query"}.items() <= operation["parameters"][0].items()
    pvc_path = "/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"
    assert pvc_path in document["paths"]


def test_openapi_v2_protobuf_holds_the_same_paths(kubesim: KubesimHandle) -> None:
    with raw_http(kubesim) as http:
        response = http.get("/openapi/v2", headers={"Accept": _PROTOBUF_ACCEPT})

    # kube-openapi answers the deprecated "@v1.0" media type as octet-stream (Go's mime
    # parser rejects "@" in a Content-Type).
    assert response.headers["content-type"] == "application/octet-stream"
    document = response.content
    assert _field(document, 1) == [b"2.0"]  # Document.swagger
    path_items = _field(document, 8, 2)  # Document.paths.path
    names = {_field(item, 1)[0].decode(): item for item in path_items}
    namespace = names["/api/v1/namespaces/{name}"]
    patch = _field(namespace, 2, 8)[0]  # NamedPathItem.value.patch
    query = _field(patch, 8, 1, 2, 3)[0]  # parameters[0].parameter.non_body.query
    assert _field(query, 4) == [b"fieldValidation"]
    assert _field(query, 2) == [b"query"]
    extensions = {
        _field(named, 1)[0].decode(): yaml.safe_load(_field(named, 2, 2)[0])
        for named in _field(patch, 13)
    }
    assert extensions["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "Namespace",
        "version": "v1",
    }


def test_kubectl_decodes_the_protobuf_v2_document(kubesim_tls: KubesimHandle) -> None:
    # `explain --output=plaintext-openapiv2` reads /openapi/v2 through client-go's
    # OpenAPISchema(). The document has no definitions (clients skip schema validation), so
    # kubectl gets as far as looking the model up, which proves it parsed the protobuf.
    result = kubectl(
        kubesim_tls.admin_kubeconfig, "explain", "--output=plaintext-openapiv2", "namespaces"
    )

    assert result.returncode == 1
    assert result.stderr.strip() == 'error: couldn\'t find resource for "/v1, Kind=Namespace"'
    served = [(r["path"], r["status"]) for r in kubesim_tls.requests()]
    assert ("/openapi/v2", 200) in served


def test_openapi_v3_lists_persistent_volume_claims(kubesim: KubesimHandle, tmp_path: Path) -> None:
    with raw_http(kubesim) as http:
        root = http.get("/openapi/v3").json()
        core = http.get(root["paths"]["api/v1"]["serverRelativeURL"]).json()

    operation = core["paths"]["/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"]
    assert operation["patch"]["x-kubernetes-group-version-kind"]["kind"] == (
        "PersistentVolumeClaim"
    )
