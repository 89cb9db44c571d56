"""Field numbers of the Kubernetes protobuf messages kubesim reads in request bodies.

Carried over from the upstream `generated.proto` files (k8s.io/apimachinery meta/v1,
k8s.io/api core/v1, rbac/v1, authorization/v1, authentication/v1). A schema maps a field
number to its JSON name and its type; `kubesim.protobuf` walks the wire bytes with it.

Types: "string", "int" and "bool" are Go value fields (their zero value means unset, as in
Go's JSON with omitempty); "string?", "int?" and "bool?" are Go pointers, present even when
zero;
"bytes" is base64 in JSON; "strings" is a repeated string (empty entries kept: `apiGroups: [""]`
is the core group); "map" is map<string,string>, "bytesmap" map<string,bytes>, "extra"
map<string, ExtraValue>; "time" a metav1.Time; "fields" a FieldsV1 (raw JSON); "intorstr"
an intstr.IntOrString (a number or a string in JSON); "ints" a repeated int64; "quantity" a
resource.Quantity and "quantitymap" a map of them. A dict is a nested message, `List(schema)`
a repeated one, `Inline(schema)` an embedded struct. Pod templates live in
`kubesim.protobuf_pods`.

PersistentVolumeClaim and NetworkPolicy have no schema and still get a 415, which kubesim's
README lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Union


@dataclass(frozen=True)
class List:
    item: Schema


@dataclass(frozen=True)
class Inline:
    """An embedded Go struct: its fields appear in the parent's JSON object."""

    schema: Schema


Kind = Union[str, "Schema", List, Inline]
Schema = dict[int, tuple[str, Kind]]

_OWNER_REFERENCE: Final[Schema] = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool?"),
    7: ("blockOwnerDeletion", "bool?"),
}
_MANAGED_FIELDS_ENTRY: Final[Schema] = {
    1: ("manager", "string"),
    2: ("operation", "string"),
    3: ("apiVersion", "string"),
    4: ("time", "time"),
    6: ("fieldsType", "string"),
    7: ("fieldsV1", "fields"),
    8: ("subresource", "string"),
}
OBJECT_META: Final[Schema] = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    4: ("selfLink", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", "time"),
    9: ("deletionTimestamp", "time"),
    10: ("deletionGracePeriodSeconds", "int?"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    13: ("ownerReferences", List(_OWNER_REFERENCE)),
    14: ("finalizers", "strings"),
    17: ("managedFields", List(_MANAGED_FIELDS_ENTRY)),
}
LABEL_SELECTOR: Final[Schema] = {
    1: ("matchLabels", "map"),
    2: (
        "matchExpressions",
        List({1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "strings")}),
    ),
}
_OBJECT_REFERENCE: Final[Schema] = {
    1: ("kind", "string"),
    2: ("namespace", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("resourceVersion", "string"),
    7: ("fieldPath", "string"),
}
_NAMESPACE_CONDITION: Final[Schema] = {
    1: ("type", "string"),
    2: ("status", "string"),
    4: ("lastTransitionTime", "time"),
    5: ("reason", "string"),
    6: ("message", "string"),
}

_CONDITION: Final[Schema] = {
    1: ("type", "string"),
    2: ("status", "string"),
    3: ("observedGeneration", "int"),
    4: ("lastTransitionTime", "time"),
    5: ("reason", "string"),
    6: ("message", "string"),
}
_SERVICE_PORT: Final[Schema] = {
    1: ("name", "string"),
    2: ("protocol", "string"),
    3: ("port", "int"),
    4: ("targetPort", "intorstr"),
    5: ("nodePort", "int"),
    6: ("appProtocol", "string?"),
}
_SERVICE_SPEC: Final[Schema] = {
    1: ("ports", List(_SERVICE_PORT)),
    2: ("selector", "map"),
    3: ("clusterIP", "string"),
    4: ("type", "string"),
    5: ("externalIPs", "strings"),
    7: ("sessionAffinity", "string"),
    8: ("loadBalancerIP", "string"),
    9: ("loadBalancerSourceRanges", "strings"),
    10: ("externalName", "string"),
    11: ("externalTrafficPolicy", "string"),
    12: ("healthCheckNodePort", "int"),
    13: ("publishNotReadyAddresses", "bool"),
    14: ("sessionAffinityConfig", {1: ("clientIP", {1: ("timeoutSeconds", "int?")})}),
    17: ("ipFamilyPolicy", "string?"),
    18: ("clusterIPs", "strings"),
    19: ("ipFamilies", "strings"),
    20: ("allocateLoadBalancerNodePorts", "bool?"),
    21: ("loadBalancerClass", "string?"),
    22: ("internalTrafficPolicy", "string?"),
    23: ("trafficDistribution", "string?"),
}
_SERVICE_STATUS: Final[Schema] = {
    1: ("loadBalancer", {1: ("ingress", List({1: ("ip", "string"), 2: ("hostname", "string")}))}),
    2: ("conditions", List(_CONDITION)),
}
_PDB_SPEC: Final[Schema] = {
    1: ("minAvailable", "intorstr"),
    2: ("selector", LABEL_SELECTOR),
    3: ("maxUnavailable", "intorstr"),
    4: ("unhealthyPodEvictionPolicy", "string?"),
}
_PDB_STATUS: Final[Schema] = {
    1: ("observedGeneration", "int"),
    2: ("disruptedPods", "timemap"),
    3: ("disruptionsAllowed", "int"),
    4: ("currentHealthy", "int"),
    5: ("desiredHealthy", "int"),
    6: ("expectedPods", "int"),
    7: ("conditions", List(_CONDITION)),
}

# --- rbac.authorization.k8s.io/v1 -------------------------------------------------------------
_POLICY_RULE: Final[Schema] = {
    1: ("verbs", "strings"),
    2: ("apiGroups", "strings"),
    3: ("resources", "strings"),
    4: ("resourceNames", "strings"),
    5: ("nonResourceURLs", "strings"),
}
_SUBJECT: Final[Schema] = {
    1: ("kind", "string"),
    2: ("apiGroup", "string"),
    3: ("name", "string"),
    4: ("namespace", "string"),
}
_ROLE_REF: Final[Schema] = {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")}
_BINDING: Final[Schema] = {
    1: ("metadata", OBJECT_META),
    2: ("subjects", List(_SUBJECT)),
    3: ("roleRef", _ROLE_REF),
}

# --- authorization.k8s.io/v1 and authentication.k8s.io/v1 ---------------------------------------
_SELECTOR_REQUIREMENT: Final[Schema] = {
    1: ("key", "string"),
    2: ("operator", "string"),
    3: ("values", "strings"),
}
_SELECTOR_ATTRIBUTES: Final[Schema] = {
    1: ("rawSelector", "string"),
    2: ("requirements", List(_SELECTOR_REQUIREMENT)),
}
_RESOURCE_ATTRIBUTES: Final[Schema] = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
    8: ("fieldSelector", _SELECTOR_ATTRIBUTES),
    9: ("labelSelector", _SELECTOR_ATTRIBUTES),
}
_ACCESS_SPEC: Final[Schema] = {
    1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")}),
    3: ("user", "string"),
    4: ("groups", "strings"),
    5: ("extra", "extra"),
    6: ("uid", "string"),
}
# Go serializes a value-typed `status` even when empty, so a request carries one.
_ACCESS_STATUS: Final[Schema] = {
    1: ("allowed", "bool"),
    2: ("reason", "string"),
    3: ("evaluationError", "string"),
    4: ("denied", "bool"),
}
_REVIEW: Final[Schema] = {
    1: ("metadata", OBJECT_META),
    2: ("spec", _ACCESS_SPEC),
    3: ("status", _ACCESS_STATUS),
}
_USER_INFO: Final[Schema] = {
    1: ("username", "string"),
    2: ("uid", "string"),
    3: ("groups", "strings"),
    4: ("extra", "extra"),
}
_RULES_STATUS: Final[Schema] = {
    1: (
        "resourceRules",
        List(
            {
                1: ("verbs", "strings"),
                2: ("apiGroups", "strings"),
                3: ("resources", "strings"),
                4: ("resourceNames", "strings"),
            }
        ),
    ),
    2: ("nonResourceRules", List({1: ("verbs", "strings"), 2: ("nonResourceURLs", "strings")})),
    3: ("incomplete", "bool"),
    4: ("evaluationError", "string"),
}
_BOUND_OBJECT: Final[Schema] = {
    1: ("kind", "string"),
    2: ("apiVersion", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
}

# meta/v1 DeleteOptions: typed clients send it as the body of every DELETE, under the
# apiVersion of the group they talk to.
DELETE_OPTIONS: Final[Schema] = {
    1: ("gracePeriodSeconds", "int?"),
    2: ("preconditions", {1: ("uid", "string?"), 2: ("resourceVersion", "string?")}),
    3: ("orphanDependents", "bool?"),
    4: ("propagationPolicy", "string?"),
    5: ("dryRun", "strings"),
    6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool?"),
}

_CORE: Final = "v1"
_RBAC: Final = "rbac.authorization.k8s.io/v1"
_AUTHZ: Final = "authorization.k8s.io/v1"
_AUTHN: Final = "authentication.k8s.io/v1"

SCHEMAS: Final[dict[tuple[str, str], Schema]] = {
    (_CORE, "Namespace"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("finalizers", "strings")}),
        3: ("status", {1: ("phase", "string"), 2: ("conditions", List(_NAMESPACE_CONDITION))}),
    },
    (_CORE, "Secret"): {
        1: ("metadata", OBJECT_META),
        2: ("data", "bytesmap"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool?"),
    },
    (_CORE, "ConfigMap"): {
        1: ("metadata", OBJECT_META),
        2: ("data", "map"),
        3: ("binaryData", "bytesmap"),
        4: ("immutable", "bool?"),
    },
    (_CORE, "ServiceAccount"): {
        1: ("metadata", OBJECT_META),
        2: ("secrets", List(_OBJECT_REFERENCE)),
        3: ("imagePullSecrets", List({1: ("name", "string")})),
        4: ("automountServiceAccountToken", "bool?"),
    },
    (_CORE, "Service"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", _SERVICE_SPEC),
        3: ("status", _SERVICE_STATUS),
    },
    ("policy/v1", "PodDisruptionBudget"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", _PDB_SPEC),
        3: ("status", _PDB_STATUS),
    },
    (_RBAC, "Role"): {1: ("metadata", OBJECT_META), 2: ("rules", List(_POLICY_RULE))},
    (_RBAC, "ClusterRole"): {
        1: ("metadata", OBJECT_META),
        2: ("rules", List(_POLICY_RULE)),
        3: ("aggregationRule", {1: ("clusterRoleSelectors", List(LABEL_SELECTOR))}),
    },
    (_RBAC, "RoleBinding"): _BINDING,
    (_RBAC, "ClusterRoleBinding"): _BINDING,
    (_AUTHZ, "SelfSubjectAccessReview"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: _ACCESS_SPEC[1], 2: _ACCESS_SPEC[2]}),
        3: ("status", _ACCESS_STATUS),
    },
    (_AUTHZ, "SubjectAccessReview"): _REVIEW,
    (_AUTHZ, "LocalSubjectAccessReview"): _REVIEW,
    (_AUTHZ, "SelfSubjectRulesReview"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("namespace", "string")}),
        3: ("status", _RULES_STATUS),
    },
    (_AUTHN, "SelfSubjectReview"): {
        1: ("metadata", OBJECT_META),
        2: ("status", {1: ("userInfo", _USER_INFO)}),
    },
    (_AUTHN, "TokenReview"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("token", "string"), 2: ("audiences", "strings")}),
        3: (
            "status",
            {
                1: ("authenticated", "bool"),
                2: ("user", _USER_INFO),
                3: ("error", "string"),
                4: ("audiences", "strings"),
            },
        ),
    },
    (_AUTHN, "TokenRequest"): {
        1: ("metadata", OBJECT_META),
        2: (
            "spec",
            {
                1: ("audiences", "strings"),
                3: ("boundObjectRef", _BOUND_OBJECT),
                4: ("expirationSeconds", "int?"),
            },
        ),
        3: ("status", {1: ("token", "string"), 2: ("expirationTimestamp", "time")}),
    },
}
