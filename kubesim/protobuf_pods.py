"""Protobuf field numbers of Pods and Deployments (k8s.io/api core/v1 and apps/v1).

A pod template is the largest message Go clients send (`kubectl create deployment`, a Go
program creating pods). This covers the pod and container fields in everyday use; a field not
listed here (affinity, ephemeral containers, most volume types, scheduling gates, resource
claims...) makes the body a 415 naming its field number rather than being dropped.
"""

from __future__ import annotations

from typing import Final

from kubesim.protobuf_schemas import LABEL_SELECTOR, OBJECT_META, Inline, List, Schema

_NAME: Final[Schema] = {1: ("name", "string")}  # LocalObjectReference
_KEY_TO_PATH: Final[Schema] = {1: ("key", "string"), 2: ("path", "string"), 3: ("mode", "int?")}
_KEY_SELECTOR: Final[Schema] = {
    1: ("", Inline(_NAME)),
    2: ("key", "string"),
    3: ("optional", "bool?"),
}
_FIELD_REF: Final[Schema] = {1: ("apiVersion", "string"), 2: ("fieldPath", "string")}
_RESOURCE_FIELD_REF: Final[Schema] = {
    1: ("containerName", "string"),
    2: ("resource", "string"),
    3: ("divisor", "quantity"),
}
_ENV_VAR: Final[Schema] = {
    1: ("name", "string"),
    2: ("value", "string"),
    3: (
        "valueFrom",
        {
            1: ("fieldRef", _FIELD_REF),
            2: ("resourceFieldRef", _RESOURCE_FIELD_REF),
            3: ("configMapKeyRef", _KEY_SELECTOR),
            4: ("secretKeyRef", _KEY_SELECTOR),
        },
    ),
}
_ENV_FROM: Final[Schema] = {
    1: ("prefix", "string"),
    2: ("configMapRef", {1: ("", Inline(_NAME)), 2: ("optional", "bool?")}),
    3: ("secretRef", {1: ("", Inline(_NAME)), 2: ("optional", "bool?")}),
}
_CONTAINER_PORT: Final[Schema] = {
    1: ("name", "string"),
    2: ("hostPort", "int"),
    3: ("containerPort", "int"),
    4: ("protocol", "string"),
    5: ("hostIP", "string"),
}
_RESOURCES: Final[Schema] = {
    1: ("limits", "quantitymap"),
    2: ("requests", "quantitymap"),
    3: ("claims", List({1: ("name", "string"), 2: ("request", "string")})),
}
_VOLUME_MOUNT: Final[Schema] = {
    1: ("name", "string"),
    2: ("readOnly", "bool"),
    3: ("mountPath", "string"),
    4: ("subPath", "string"),
    5: ("mountPropagation", "string?"),
    6: ("subPathExpr", "string"),
}
_HTTP_GET: Final[Schema] = {
    1: ("path", "string"),
    2: ("port", "intorstr"),
    3: ("host", "string"),
    4: ("scheme", "string"),
    5: ("httpHeaders", List({1: ("name", "string"), 2: ("value", "string")})),
}
_HANDLER: Final[Schema] = {
    1: ("exec", {1: ("command", "strings")}),
    2: ("httpGet", _HTTP_GET),
    3: ("tcpSocket", {1: ("port", "intorstr"), 2: ("host", "string")}),
}
_PROBE: Final[Schema] = {
    1: ("", Inline({**_HANDLER, 4: ("grpc", {1: ("port", "int"), 2: ("service", "string?")})})),
    2: ("initialDelaySeconds", "int"),
    3: ("timeoutSeconds", "int"),
    4: ("periodSeconds", "int"),
    5: ("successThreshold", "int"),
    6: ("failureThreshold", "int"),
    7: ("terminationGracePeriodSeconds", "int?"),
}
_SE_LINUX: Final[Schema] = {
    1: ("user", "string"),
    2: ("role", "string"),
    3: ("type", "string"),
    4: ("level", "string"),
}
_SECCOMP: Final[Schema] = {1: ("type", "string"), 2: ("localhostProfile", "string?")}
_WINDOWS: Final[Schema] = {
    1: ("gmsaCredentialSpecName", "string?"),
    2: ("gmsaCredentialSpec", "string?"),
    3: ("runAsUserName", "string?"),
    4: ("hostProcess", "bool?"),
}
_SECURITY_CONTEXT: Final[Schema] = {
    1: ("capabilities", {1: ("add", "strings"), 2: ("drop", "strings")}),
    2: ("privileged", "bool?"),
    3: ("seLinuxOptions", _SE_LINUX),
    4: ("runAsUser", "int?"),
    5: ("runAsNonRoot", "bool?"),
    6: ("readOnlyRootFilesystem", "bool?"),
    7: ("allowPrivilegeEscalation", "bool?"),
    8: ("runAsGroup", "int?"),
    9: ("procMount", "string?"),
    10: ("windowsOptions", _WINDOWS),
    11: ("seccompProfile", _SECCOMP),
}
_POD_SECURITY_CONTEXT: Final[Schema] = {
    1: ("seLinuxOptions", _SE_LINUX),
    2: ("runAsUser", "int?"),
    3: ("runAsNonRoot", "bool?"),
    4: ("supplementalGroups", "ints"),
    5: ("fsGroup", "int?"),
    6: ("runAsGroup", "int?"),
    7: ("sysctls", List({1: ("name", "string"), 2: ("value", "string")})),
    8: ("windowsOptions", _WINDOWS),
    9: ("fsGroupChangePolicy", "string?"),
    10: ("seccompProfile", _SECCOMP),
}
_CONTAINER: Final[Schema] = {
    1: ("name", "string"),
    2: ("image", "string"),
    3: ("command", "strings"),
    4: ("args", "strings"),
    5: ("workingDir", "string"),
    6: ("ports", List(_CONTAINER_PORT)),
    7: ("env", List(_ENV_VAR)),
    8: ("resources", _RESOURCES),
    9: ("volumeMounts", List(_VOLUME_MOUNT)),
    10: ("livenessProbe", _PROBE),
    11: ("readinessProbe", _PROBE),
    12: ("lifecycle", {1: ("postStart", _HANDLER), 2: ("preStop", _HANDLER)}),
    13: ("terminationMessagePath", "string"),
    14: ("imagePullPolicy", "string"),
    15: ("securityContext", _SECURITY_CONTEXT),
    16: ("stdin", "bool"),
    17: ("stdinOnce", "bool"),
    18: ("tty", "bool"),
    19: ("envFrom", List(_ENV_FROM)),
    20: ("terminationMessagePolicy", "string"),
    21: ("volumeDevices", List({1: ("name", "string"), 2: ("devicePath", "string")})),
    22: ("startupProbe", _PROBE),
}
_ITEMS: Final = List(_KEY_TO_PATH)
_VOLUME_SOURCE: Final[Schema] = {
    1: ("hostPath", {1: ("path", "string"), 2: ("type", "string?")}),
    2: ("emptyDir", {1: ("medium", "string"), 2: ("sizeLimit", "quantity")}),
    6: (
        "secret",
        {
            1: ("secretName", "string"),
            2: ("items", _ITEMS),
            3: ("defaultMode", "int?"),
            4: ("optional", "bool?"),
        },
    ),
    10: ("persistentVolumeClaim", {1: ("claimName", "string"), 2: ("readOnly", "bool")}),
    16: (
        "downwardAPI",
        {
            1: (
                "items",
                List(
                    {
                        1: ("path", "string"),
                        2: ("fieldRef", _FIELD_REF),
                        3: ("resourceFieldRef", _RESOURCE_FIELD_REF),
                        4: ("mode", "int?"),
                    }
                ),
            ),
            2: ("defaultMode", "int?"),
        },
    ),
    19: (
        "configMap",
        {
            1: ("", Inline(_NAME)),
            2: ("items", _ITEMS),
            3: ("defaultMode", "int?"),
            4: ("optional", "bool?"),
        },
    ),
}
_POD_SPEC: Final[Schema] = {
    1: ("volumes", List({1: ("name", "string"), 2: ("", Inline(_VOLUME_SOURCE))})),
    2: ("containers", List(_CONTAINER)),
    3: ("restartPolicy", "string"),
    4: ("terminationGracePeriodSeconds", "int?"),
    5: ("activeDeadlineSeconds", "int?"),
    6: ("dnsPolicy", "string"),
    7: ("nodeSelector", "map"),
    8: ("serviceAccountName", "string"),
    9: ("serviceAccount", "string"),
    10: ("nodeName", "string"),
    11: ("hostNetwork", "bool"),
    12: ("hostPID", "bool"),
    13: ("hostIPC", "bool"),
    14: ("securityContext", _POD_SECURITY_CONTEXT),
    15: ("imagePullSecrets", List(_NAME)),
    16: ("hostname", "string"),
    17: ("subdomain", "string"),
    19: ("schedulerName", "string"),
    20: ("initContainers", List(_CONTAINER)),
    21: ("automountServiceAccountToken", "bool?"),
    22: (
        "tolerations",
        List(
            {
                1: ("key", "string"),
                2: ("operator", "string"),
                3: ("value", "string"),
                4: ("effect", "string"),
                5: ("tolerationSeconds", "int?"),
            }
        ),
    ),
    23: ("hostAliases", List({1: ("ip", "string"), 2: ("hostnames", "strings")})),
    24: ("priorityClassName", "string"),
    25: ("priority", "int?"),
    27: ("shareProcessNamespace", "bool?"),
    28: ("readinessGates", List({1: ("conditionType", "string")})),
    29: ("runtimeClassName", "string?"),
    30: ("enableServiceLinks", "bool?"),
    31: ("preemptionPolicy", "string?"),
    32: ("overhead", "quantitymap"),
    35: ("setHostnameAsFQDN", "bool?"),
}
_POD_TEMPLATE: Final[Schema] = {1: ("metadata", OBJECT_META), 2: ("spec", _POD_SPEC)}
_DEPLOYMENT_CONDITION: Final[Schema] = {
    1: ("type", "string"),
    2: ("status", "string"),
    4: ("reason", "string"),
    5: ("message", "string"),
    6: ("lastUpdateTime", "time"),
    7: ("lastTransitionTime", "time"),
}

_CONTAINER_STATE: Final[Schema] = {
    1: ("waiting", {1: ("reason", "string"), 2: ("message", "string")}),
    2: ("running", {1: ("startedAt", "time")}),
    3: (
        "terminated",
        {
            1: ("exitCode", "int"),
            2: ("signal", "int"),
            3: ("reason", "string"),
            4: ("message", "string"),
            5: ("startedAt", "time"),
            6: ("finishedAt", "time"),
            7: ("containerID", "string"),
        },
    ),
}
_CONTAINER_STATUS: Final[Schema] = {
    1: ("name", "string"),
    2: ("state", _CONTAINER_STATE),
    3: ("lastState", _CONTAINER_STATE),
    4: ("ready", "bool"),
    5: ("restartCount", "int"),
    6: ("image", "string"),
    7: ("imageID", "string"),
    8: ("containerID", "string"),
    9: ("started", "bool?"),
}
# The PodStatus fields up to ephemeralContainerStatuses (13); later ones are refused.
_POD_STATUS: Final[Schema] = {
    1: ("phase", "string"),
    2: (
        "conditions",
        List(
            {
                1: ("type", "string"),
                2: ("status", "string"),
                3: ("lastProbeTime", "time"),
                4: ("lastTransitionTime", "time"),
                5: ("reason", "string"),
                6: ("message", "string"),
            }
        ),
    ),
    3: ("message", "string"),
    4: ("reason", "string"),
    5: ("hostIP", "string"),
    6: ("podIP", "string"),
    7: ("startTime", "time"),
    8: ("containerStatuses", List(_CONTAINER_STATUS)),
    9: ("qosClass", "string"),
    10: ("initContainerStatuses", List(_CONTAINER_STATUS)),
    11: ("nominatedNodeName", "string"),
    12: ("podIPs", List({1: ("ip", "string")})),
    13: ("ephemeralContainerStatuses", List(_CONTAINER_STATUS)),
}

POD_SCHEMAS: Final[dict[tuple[str, str], Schema]] = {
    ("v1", "Pod"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", _POD_SPEC),
        3: ("status", _POD_STATUS),
    },
    ("apps/v1", "Deployment"): {
        1: ("metadata", OBJECT_META),
        2: (
            "spec",
            {
                1: ("replicas", "int?"),
                2: ("selector", LABEL_SELECTOR),
                3: ("template", _POD_TEMPLATE),
                4: (
                    "strategy",
                    {
                        1: ("type", "string"),
                        2: (
                            "rollingUpdate",
                            {1: ("maxUnavailable", "intorstr"), 2: ("maxSurge", "intorstr")},
                        ),
                    },
                ),
                5: ("minReadySeconds", "int"),
                6: ("revisionHistoryLimit", "int?"),
                7: ("paused", "bool"),
                9: ("progressDeadlineSeconds", "int?"),
            },
        ),
        3: (
            "status",
            {
                1: ("observedGeneration", "int"),
                2: ("replicas", "int"),
                3: ("updatedReplicas", "int"),
                4: ("availableReplicas", "int"),
                5: ("unavailableReplicas", "int"),
                6: ("conditions", List(_DEPLOYMENT_CONDITION)),
                7: ("readyReplicas", "int"),
                8: ("collisionCount", "int?"),
                9: ("terminatingReplicas", "int?"),
            },
        ),
    },
}
