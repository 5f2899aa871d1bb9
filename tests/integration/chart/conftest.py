"""Rendering the Helm chart with Helm's own engine (PyPI helm-python-sdk: Helm's Go SDK
behind a C ABI, offline), for the chart's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helm_python
import pytest
import yaml

from support.paths import ROOT

CHART = ROOT / "charts" / "mcpgate"
RELEASE = "mcpgate"
RELEASE_NAMESPACE = "mcpgate-system"

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart) -> Render:
    """``render(values=None, namespace=...)``: every object the chart renders, in the
    order of its templates (NOTES.txt left out), as `helm template` would print them."""

    def render(
        values: dict[str, Any] | None = None, *, namespace: str = RELEASE_NAMESPACE
    ) -> list[dict[str, Any]]:
        manifests = chart.render(values=values, name=RELEASE, namespace=namespace)
        objects: list[dict[str, Any]] = []
        for path in sorted(manifests):
            if path.endswith("NOTES.txt"):
                continue
            objects.extend(d for d in yaml.safe_load_all(manifests[path]) if d)
        return objects

    return render


@pytest.fixture(scope="session")
def notes(chart: helm_python.Chart) -> Callable[..., str]:
    def notes(values: dict[str, Any] | None = None) -> str:
        manifests = chart.render(values=values, name=RELEASE, namespace=RELEASE_NAMESPACE)
        return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))

    return notes
