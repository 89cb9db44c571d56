"""The chart's image: a value the user must set (this project publishes no image), refused with
a message saying what to set when missing; and Chart.yaml's metadata, which must not point at
places that do not exist."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from kubesim.pytest_plugin import KubesimHandle
from tests.chart.helm_runner import CHART_DIR, HelmActionFailed

REPO = CHART_DIR.parents[1]
WHAT_TO_SET = "image.repository is required"


def test_install_without_an_image_is_refused_saying_what_to_set(
    install_scangate_chart: Callable[..., Any], kubesim: KubesimHandle
) -> None:
    with pytest.raises(HelmActionFailed) as refused:
        install_scangate_chart({"image": {"repository": ""}})

    message = refused.value.message
    assert WHAT_TO_SET in message
    assert "--set image.repository=" in message
    apps = k8s.AppsV1Api(kubesim.admin_client())
    assert apps.list_namespaced_deployment("scangate").items == []


def test_the_image_set_is_the_image_deployed(install_scangate_chart: Callable[..., Any]) -> None:
    release = install_scangate_chart({"image": {"repository": "registry.internal/sec/scangate"}})

    pod = release.release.get("Deployment", "scangate")["spec"]["template"]["spec"]
    app_version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]
    images = {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
    assert images == {f"registry.internal/sec/scangate:{app_version}"}


def test_chart_metadata_is_real() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    assert chart["appVersion"] == project["version"]
    assert chart["annotations"]["artifacthub.io/license"] == project["license"]
    # The repository names no home page or public source URL of its own: none is invented.
    assert "home" not in chart
    assert "sources" not in chart
    for maintainer in chart.get("maintainers", []):
        assert maintainer.get("email") or maintainer.get("url"), maintainer
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["image"]["repository"] == ""
