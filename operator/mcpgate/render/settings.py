"""What the operator (or `mcpgate render`) decides about every gateway it renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpgate import __version__

__all__ = ["DEFAULT_IMAGE", "RenderSettings"]

DEFAULT_IMAGE = f"ghcr.io/mcpgate/mcpgate:{__version__}"


@dataclass(frozen=True)
class RenderSettings:
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    cluster_domain: str = "cluster.local"
    # Container resources when the McpServer gives none (small: the gateway is light).
    default_resources: dict[str, Any] = field(
        default_factory=lambda: {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"memory": "256Mi"},
        }
    )
    # AwsSigV4 without key references uses the pod's own AWS identity; opt-in only.
    allow_ambient_aws_credentials: bool = False
    # Gateways may reach loopback upstreams (API.md "Destinations"): local clusters only.
    allow_loopback_destinations: bool = False
    log_level: str = "info"
    # The numeric user and group of the image (see the Dockerfile).
    run_as_user: int = 10001
