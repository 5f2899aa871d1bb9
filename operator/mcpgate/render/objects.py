"""The Kubernetes objects of one McpServer, as plain dicts with explicit names.

ConfigMap `<name>-config` (the gateway configuration), Deployment `<name>`,
Service `<name>`, HorizontalPodAutoscaler `<name>` with `autoscaling`, and
PodDisruptionBudget `<name>` when more than one replica is wanted. Pure: the
same inputs give the same objects, byte for byte, so their hashes mark change.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from mcpgate.api import API_VERSION, HttpApiDataSource, McpServer
from mcpgate.gateway.config import DEFAULT_CREDENTIALS_DIR
from mcpgate.render.config import gateway_config_json, referenced_secret_keys
from mcpgate.render.settings import RenderSettings

__all__ = [
    "API_KEYS_DIR",
    "CONFIG_DIR",
    "CONFIG_HASH_ANNOTATION",
    "CONFIG_KEY",
    "GZIP_CONFIG_ABOVE_BYTES",
    "HASH_ANNOTATION",
    "MAX_GZIPPED_CONFIG_BYTES",
    "OWNED_KINDS",
    "OversizedConfig",
    "OwnedKind",
    "config_map_name",
    "labels",
    "owner_reference",
    "render_objects",
    "selector_labels",
    "server_url",
    "stable_hash",
    "text_hash",
]

CONFIG_DIR = "/etc/mcpgate"
API_KEYS_DIR = "/var/run/mcpgate/api-keys"
HTTP_PORT = 8080
METRICS_PORT = 9090
PRESTOP_SECONDS = 5  # endpoints drain before the gateway stops accepting
GRACE_SECONDS = 35  # preStop + the gateway's 25 s drain + margin
CONFIG_HASH_ANNOTATION = "mcpgate.io/config-hash"
CONFIG_KEY = "config.json"
GZIP_CONFIG_ABOVE_BYTES = 256 * 1024
MAX_GZIPPED_CONFIG_BYTES = 1024 * 1024
HASH_ANNOTATION = "mcpgate.io/rendered-hash"


def stable_hash(value: Any) -> str:
    """A short hash of a JSON-able value, independent of key order."""
    return _short_sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str))


def text_hash(text: str) -> str:
    """A short hash of a text as it is (the gateway configuration: written once already)."""
    return _short_sha256(text.encode())


def _short_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def config_map_name(server_name: str) -> str:
    return f"{server_name}-config"


def _server_name(server_name: str) -> str:
    return server_name


@dataclass(frozen=True)
class OwnedKind:
    """A kind of object an McpServer owns: how it is addressed, and its name."""

    kind: str
    api_version: str  # "apps/v1", or "v1" for the core group
    plural: str
    name: Callable[[str], str]  # from the server's name
    optional: bool = False  # rendered only when wanted, deleted when not

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


# The one table of what the operator owns: it renders these (and only these), watches
# them for drift, reads them before each reconcile, and the chart's RBAC grants them.
OWNED_KINDS: tuple[OwnedKind, ...] = (
    OwnedKind("ConfigMap", "v1", "configmaps", config_map_name),
    OwnedKind("Deployment", "apps/v1", "deployments", _server_name),
    OwnedKind("Service", "v1", "services", _server_name),
    OwnedKind(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "horizontalpodautoscalers",
        _server_name,
        optional=True,
    ),
    OwnedKind(
        "PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", _server_name, optional=True
    ),
)
_OWNED = {owned.kind: owned for owned in OWNED_KINDS}


def _type_meta(kind: str) -> dict[str, str]:
    return {"apiVersion": _OWNED[kind].api_version, "kind": kind}


def selector_labels(server_name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "mcpgate-gateway", "app.kubernetes.io/instance": server_name}


def labels(server_name: str) -> dict[str, str]:
    return {
        **selector_labels(server_name),
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/part-of": "mcpgate",
        "app.kubernetes.io/managed-by": "mcpgate-operator",
    }


def owner_reference(server: McpServer) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "McpServer",
        "name": server.metadata.name,
        "uid": server.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def server_url(server: McpServer, settings: RenderSettings) -> str:
    namespace = server.metadata.namespace or "default"
    host = f"{server.metadata.name}.{namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{server.spec.service.port}/mcp"


def _metadata(server: McpServer, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": server.metadata.namespace or "default",
        "labels": labels(server.metadata.name),
        "ownerReferences": [owner_reference(server)],
    }


def _stamped(obj: dict[str, Any], config_hash: str) -> dict[str, Any]:
    """The object with the hash of its rendered form, for drift and change detection. The
    ConfigMap's configuration text enters as its hash: hashed once, not serialised again."""
    hashed = obj
    if obj["kind"] == "ConfigMap":
        hashed = {k: v for k, v in obj.items() if k != "binaryData"}
        hashed["data"] = {CONFIG_KEY: config_hash}
    obj["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = stable_hash(hashed)
    return obj


class OversizedConfig(Exception):
    """The gateway configuration is over what a ConfigMap can hold, even gzipped."""

    def __init__(self, gzipped_bytes: int) -> None:
        super().__init__(
            f"the gateway configuration is {gzipped_bytes} bytes after gzip, over the"
            f" {MAX_GZIPPED_CONFIG_BYTES} (1 MiB) a ConfigMap holds: split the tools over"
            " more McpServers"
        )
        self.gzipped_bytes = gzipped_bytes


def _config_map(server: McpServer, config_json: str) -> dict[str, Any]:
    """The ConfigMap; a configuration over 256 KiB goes gzipped into `binaryData` under
    the same key (the gateway reads either)."""
    text = config_json.encode()
    payload: dict[str, Any] = {"data": {CONFIG_KEY: config_json}}
    if len(text) > GZIP_CONFIG_ABOVE_BYTES:
        packed = gzip.compress(text, compresslevel=9, mtime=0)  # the same bytes every time
        if len(packed) > MAX_GZIPPED_CONFIG_BYTES:
            raise OversizedConfig(len(packed))
        payload = {"binaryData": {CONFIG_KEY: base64.b64encode(packed).decode()}}
    return {
        **_type_meta("ConfigMap"),
        "metadata": _metadata(server, config_map_name(server.metadata.name)),
        **payload,
    }


def _credential_volumes(
    server: McpServer, sources: Mapping[str, HttpApiDataSource]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for Secrets: each referenced key at `<secret>/<key>` in one
    projected volume, and the key Secret whole (so new keys appear without a restart)."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    by_secret: dict[str, list[str]] = {}
    for secret, key in sorted(referenced_secret_keys(server, sources)):
        by_secret.setdefault(secret, []).append(key)
    if by_secret:
        volumes.append(
            {
                "name": "credentials",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        {
                            "secret": {
                                "name": secret,
                                "items": [{"key": key, "path": f"{secret}/{key}"} for key in keys],
                            }
                        }
                        for secret, keys in by_secret.items()
                    ],
                },
            }
        )
        mounts.append(
            {"name": "credentials", "mountPath": DEFAULT_CREDENTIALS_DIR, "readOnly": True}
        )
    keys_ref = server.spec.authorization.api_key_secret_ref
    if keys_ref is not None:
        volumes.append(
            {"name": "api-keys", "secret": {"secretName": keys_ref.name, "defaultMode": 0o440}}
        )
        mounts.append({"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True})
    return volumes, mounts


def _deployment(
    server: McpServer,
    sources: Mapping[str, HttpApiDataSource],
    settings: RenderSettings,
    config_hash: str,
) -> dict[str, Any]:
    name = server.metadata.name
    spec = server.spec
    template = spec.pod_template
    pod_meta = template.metadata if template and template.metadata else None
    pod_spec = template.spec if template and template.spec else None
    credential_volumes, credential_mounts = _credential_volumes(server, sources)
    container: dict[str, Any] = {
        "name": "gateway",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": [
            "gateway",
            "--config",
            f"{CONFIG_DIR}/{CONFIG_KEY}",
            "--log-level",
            settings.log_level,
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": (
            spec.resources.model_dump(exclude_none=True)
            if spec.resources
            else settings.default_resources
        ),
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not the host's
            *credential_mounts,
        ],
    }
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,  # the gateway never calls the API (API.md)
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(name)}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            *credential_volumes,
        ],
    }
    if spec.service_account_name is not None:
        pod["serviceAccountName"] = spec.service_account_name
    if pod_spec is not None:
        optional = {
            "nodeSelector": pod_spec.node_selector or None,
            "tolerations": [
                t.model_dump(by_alias=True, exclude_none=True) for t in pod_spec.tolerations
            ]
            or None,
            "affinity": pod_spec.affinity or None,
            "imagePullSecrets": [{"name": s.name} for s in pod_spec.image_pull_secrets] or None,
            "priorityClassName": pod_spec.priority_class_name or None,
            "topologySpreadConstraints": pod_spec.topology_spread_constraints or None,
        }
        pod.update({k: v for k, v in optional.items() if v is not None})
    pod_labels = {**(pod_meta.labels if pod_meta else {}), **selector_labels(name)}
    pod_annotations = {
        **(pod_meta.annotations if pod_meta else {}),
        CONFIG_HASH_ANNOTATION: config_hash,
    }
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(name)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {"labels": pod_labels, "annotations": pod_annotations},
            "spec": pod,
        },
    }
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.wanted_replicas
    return {
        **_type_meta("Deployment"),
        "metadata": _metadata(server, name),
        "spec": deployment_spec,
    }


def _service(server: McpServer) -> dict[str, Any]:
    return {
        **_type_meta("Service"),
        "metadata": _metadata(server, server.metadata.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(server.metadata.name),
            "ports": [
                {
                    "name": "http",
                    "port": server.spec.service.port,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def _hpa(server: McpServer) -> dict[str, Any] | None:
    scaling = server.spec.autoscaling
    if scaling is None:
        return None
    return {
        **_type_meta("HorizontalPodAutoscaler"),
        "metadata": _metadata(server, server.metadata.name),
        "spec": {
            "scaleTargetRef": {
                **_type_meta("Deployment"),
                "name": server.metadata.name,
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def _pdb(server: McpServer) -> dict[str, Any] | None:
    if server.spec.wanted_replicas <= 1:  # autoscaling: its minReplicas
        return None
    return {
        **_type_meta("PodDisruptionBudget"),
        "metadata": _metadata(server, server.metadata.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(server.metadata.name)},
        },
    }


def render_objects(
    server: McpServer,
    sources: Mapping[str, HttpApiDataSource],
    settings: RenderSettings,
) -> tuple[str, list[dict[str, Any]], list[tuple[str, str]]]:
    """The gateway configuration's text, the objects to apply (each stamped with the hash of
    its rendered form), and the (kind, name) of optional objects that must not exist."""
    config_json = gateway_config_json(
        server,
        sources,
        api_keys_dir=API_KEYS_DIR,
        allow_loopback_destinations=settings.allow_loopback_destinations,
    )
    config_hash = text_hash(config_json)
    objects = [
        _config_map(server, config_json),
        _deployment(server, sources, settings, config_hash),
        _service(server),
    ]
    absent = []
    for kind, obj in (
        ("HorizontalPodAutoscaler", _hpa(server)),
        ("PodDisruptionBudget", _pdb(server)),
    ):
        if obj is None:
            absent.append((kind, server.metadata.name))
        else:
            objects.append(obj)
    # Deep copies: nothing rendered may alias the settings or the spec (a caller editing an
    # object must not change the next render).
    return config_json, [_stamped(copy.deepcopy(o), config_hash) for o in objects], absent
