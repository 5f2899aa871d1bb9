"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


# Real loopback upstreams (recording server, OAuth2 token server, moto) and the
# Kubernetes API emulator (kube_api, kube_env, kubectl) for every test.
pytest_plugins = ["support.upstream", "support.kube"]
