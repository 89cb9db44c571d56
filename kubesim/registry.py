"""Generic REST storage: the API rules for create, get, list, update, patch and delete.

This is where objects get their uid, resourceVersion, creationTimestamp and generated names,
where stale writes become 409 Conflicts, where names are validated and where deleting a
Namespace deletes its contents. Authorization is not done here: callers authorize the request
first, and pass an `admit` hook for checks that need the final object (RBAC escalation).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from kubesim import errors
from kubesim.defaults import apply_defaults
from kubesim.errors import ApiError, FieldError
from kubesim.patch import APPLY_PATCH, apply_patch
from kubesim.pod_status import prepare_pod_for_create
from kubesim.resources import ResourceType, resource
from kubesim.selectors import Predicate, field_selector, label_selector
from kubesim.store import Clock, Obj, Store
from kubesim.validation import validate_object

# Called with (new object, old object or None) just before a write is stored.
Admit = Callable[[Obj, Obj | None], None]
# Called with the objects a delete (or deletecollection) is about to remove, before any goes.
AdmitDeletes = Callable[[list[Obj]], None]

NAMESPACES: Final = resource("", "namespaces")
SERVICE_ACCOUNTS: Final = resource("", "serviceaccounts")
# Characters of generated name suffixes: no vowels (no accidental words) and no look-alikes.
_SUFFIX_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATE_NAME: Final = 58
_SERVER_FIELDS: Final = ("uid", "resourceVersion", "creationTimestamp", "generation")


def _no_admission(new: Obj, old: Obj | None) -> None:
    return None


def _generate_name(prefix: str) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
    return prefix[:_MAX_GENERATE_NAME] + suffix


def _has_status_subresource(rt: ResourceType) -> bool:
    return rt.subresource("status") is not None


class Registry:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    # --- reads -----------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return self._with_type(rt, obj)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        query: Mapping[str, str],
    ) -> Obj:
        """A `<Kind>List` with label/field selectors and limit/continue paging."""
        matches = self._selected(rt, namespace, query)
        items = [dict(o) for o in matches]
        metadata: dict[str, Any] = {"resourceVersion": self.store.resource_version}
        start = 0
        if query.get("continue"):
            start = _decode_continue(query["continue"])
        limit = int(query.get("limit") or 0)
        page = items[start : start + limit] if limit > 0 else items[start:]
        if limit > 0 and start + limit < len(items):
            metadata["continue"] = _encode_continue(start + limit)
            metadata["remainingItemCount"] = len(items) - start - limit
        page = json.loads(json.dumps(page))
        for item in page:
            # List items carry no kind/apiVersion on the wire; the list says what they are.
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": page,
        }

    def _selected(
        self, rt: ResourceType, namespace: str | None, query: Mapping[str, str]
    ) -> list[Mapping[str, Any]]:
        predicates: list[Predicate] = []
        if query.get("labelSelector"):
            predicates.append(label_selector(query["labelSelector"]))
        if query.get("fieldSelector"):
            predicates.append(field_selector(rt, query["fieldSelector"]))
        return [o for o in self.store.iter(rt, namespace or None) if all(p(o) for p in predicates)]

    # --- writes ----------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        admit: Admit = _no_admission,
        dry_run: bool = False,
    ) -> Obj:
        obj = self._check_body(rt, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = _generate_name(meta["generateName"])
            while self.store.exists(rt, namespace, meta["name"]):
                meta["name"] = _generate_name(meta["generateName"])
        if rt.namespaced:
            self.require_namespace(namespace)
        for server_field in _SERVER_FIELDS:
            meta.pop(server_field, None)
        meta.pop("deletionTimestamp", None)
        meta.pop("managedFields", None)
        if rt.kind == "Pod":
            prepare_pod_for_create(obj)
        self._validate(rt, obj, apply_defaults(rt.kind, obj))
        if self.store.exists(rt, namespace, meta["name"]):
            raise errors.already_exists(rt, meta["name"])
        # As BeforeCreate: admission sees the object with its uid and timestamp.
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock.timestamp()
        if rt.has_generation:
            meta["generation"] = 1
        admit(obj, None)
        if dry_run:
            return self._with_type(rt, obj)
        stored = self.store.put(rt, obj)
        if rt is NAMESPACES:
            self._create_default_service_account(meta["name"])
        return stored

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        admit: Admit = _no_admission,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        obj = self._check_body(rt, namespace, body)
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on "
                f"the URL ({name})"
            )
        old = self.store.get(rt, namespace, name)
        if old is None:
            raise errors.not_found(rt, name)
        old_meta = old["metadata"]
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise errors.conflict(rt, name, errors.STALE_OBJECT)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
            )
        obj = self._merge_server_owned(rt, old, obj, subresource)
        self._validate(rt, obj, apply_defaults(rt.kind, obj))
        self._check_immutable(rt, old, obj)
        # Admission runs for no-op updates too, as kube-apiserver's does (a denied no-op is
        # still denied); only the write is skipped.
        admit(obj, self._with_type(rt, old))
        if _same_content(old, obj):
            # A no-op update does not write, so the resourceVersion does not move.
            return self._with_type(rt, old)
        if rt.has_generation and obj.get(rt.generation_of) != old.get(rt.generation_of):
            obj["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            # Everything a real write would do, admission included, except storing it.
            return self._with_type(rt, obj)
        return self.store.put(rt, obj)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch_body: Any,
        admit: Admit = _no_admission,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        old = self.store.get(rt, namespace, name)
        if old is None:
            if content_type == APPLY_PATCH and isinstance(patch_body, dict):
                # Server-side apply creates what does not exist yet.
                meta = patch_body.setdefault("metadata", {})
                if meta.get("name", name) != name:
                    raise errors.bad_request(
                        f"the name of the object ({meta['name']}) does not match the name on "
                        f"the URL ({name})"
                    )
                meta["name"] = name
                return self.create(rt, namespace, patch_body, admit, dry_run)
            raise errors.not_found(rt, name)
        old = self._with_type(rt, old)
        patched = apply_patch(content_type, old, patch_body)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce an object")
        patched.setdefault("metadata", {})["name"] = name
        if rt.namespaced:
            patched["metadata"]["namespace"] = namespace
        # A patch always applies to the current object, unless it names a resourceVersion.
        requested_version = (
            (patch_body.get("metadata") or {}).get("resourceVersion")
            if isinstance(patch_body, dict)
            else None
        )
        patched["metadata"]["resourceVersion"] = (
            requested_version or old["metadata"]["resourceVersion"]
        )
        return self.update(rt, namespace, name, patched, admit, subresource, dry_run)

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: Mapping[str, Any] | None = None,
        admit: AdmitDeletes | None = None,
    ) -> Obj:
        current = self.store.peek(rt, namespace, name)
        if current is None:
            raise errors.not_found(rt, name)
        if admit is not None:
            # Admission comes before the preconditions, which storage checks as it deletes.
            admit([self._with_type(rt, dict(current))])
        preconditions = (options or {}).get("preconditions") or {}
        meta = current["metadata"]
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(key)
            if wanted and wanted != meta.get(key):
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {meta.get(key)}",
                )
        if (options or {}).get("dryRun"):
            return self._with_type(rt, dict(current))
        obj = self.store.remove(rt, namespace, name)
        assert obj is not None
        if rt is NAMESPACES:
            self._delete_namespace_contents(name)
            # What the apiserver returns: the namespace, now terminating.
            obj["metadata"]["deletionTimestamp"] = self.clock.timestamp()
            obj["status"] = {"phase": "Terminating"}
        return self._with_type(rt, obj)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        query: Mapping[str, str],
        admit: AdmitDeletes | None = None,
    ) -> Obj:
        deleted = []
        selected = self._selected(rt, namespace, query)
        if admit is not None:
            admit([self._with_type(rt, dict(obj)) for obj in selected])
        for obj in selected:
            meta = obj["metadata"]
            deleted.append(self.delete(rt, meta.get("namespace", ""), meta["name"]))
        for obj in deleted:
            obj.pop("kind", None)
            obj.pop("apiVersion", None)
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": self.store.resource_version},
            "items": deleted,
        }

    # --- helpers ---------------------------------------------------------------------------

    def require_namespace(self, namespace: str) -> None:
        if not self.store.exists(NAMESPACES, "", namespace):
            raise errors.not_found(NAMESPACES, namespace)

    def _check_body(self, rt: ResourceType, namespace: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj: Obj = json.loads(json.dumps(body))
        api_version = obj.get("apiVersion", rt.api_version)
        kind = obj.get("kind", rt.kind)
        if kind != rt.kind or api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _validate(self, rt: ResourceType, obj: Obj, found: list[FieldError]) -> None:
        problems = found + validate_object(rt, obj)
        if problems:
            raise errors.invalid(rt, obj["metadata"].get("name", ""), problems)

    def _merge_server_owned(self, rt: ResourceType, old: Obj, new: Obj, subresource: str) -> Obj:
        """Carry over what a client cannot change through this endpoint."""
        for key in ("uid", "creationTimestamp", "generation"):
            if key in old["metadata"]:
                new["metadata"][key] = old["metadata"][key]
            else:
                new["metadata"].pop(key, None)
        if subresource == "status":
            # The status subresource writes status only.
            result = dict(old)
            result["status"] = new.get("status", {})
            result["metadata"] = dict(old["metadata"])
            return result
        if subresource == "ephemeralcontainers":
            result = dict(old)
            result["spec"] = dict(old.get("spec") or {})
            ephemeral = (new.get("spec") or {}).get("ephemeralContainers")
            result["spec"]["ephemeralContainers"] = ephemeral or []
            return result
        if _has_status_subresource(rt) and "status" in old:
            new["status"] = old["status"]
        if rt.kind == "Service":
            spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
            for key in ("clusterIP", "clusterIPs"):
                if key in old_spec and not spec.get(key):
                    spec[key] = old_spec[key]
        return new

    def _check_immutable(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        if rt.kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get(
            "roleRef"
        ):
            raise errors.invalid(
                rt,
                new["metadata"]["name"],
                [FieldError("roleRef", "cannot change roleRef", new.get("roleRef"))],
            )

    def _with_type(self, rt: ResourceType, obj: Obj) -> Obj:
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        return obj

    def _create_default_service_account(self, namespace: str) -> None:
        # The ServiceAccount controller gives every namespace a "default" ServiceAccount.
        self.create(
            SERVICE_ACCOUNTS, namespace, {"metadata": {"name": "default", "namespace": namespace}}
        )

    def _delete_namespace_contents(self, namespace: str) -> None:
        # The namespace controller's job, done synchronously: nothing outlives its namespace.
        for rt in self.store.namespaced_types():
            for obj in list(self.store.iter(rt, namespace)):
                self.store.remove(rt, namespace, obj["metadata"]["name"])


def _same_content(old: Obj, new: Obj) -> bool:
    def comparable(obj: Obj) -> Obj:
        copy = dict(obj)
        copy["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        return copy

    return comparable(old) == comparable(new)


def _encode_continue(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_continue(token: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(410, "Expired", "The provided continue parameter is too old") from exc
