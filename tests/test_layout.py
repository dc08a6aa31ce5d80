"""The rooms of the house (issue 16 item 1): what ships in the package and the image, and
what the runtime needs from the package data. The import rules themselves are import-linter
contracts (pyproject.toml), run by the check command."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from setuptools import find_packages

from tests.services import ROOT


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_offline_evaluation_is_neither_packaged_nor_in_the_image() -> None:
    find = _pyproject()["tool"]["setuptools"]["packages"]["find"]  # type: ignore[index]
    packages = find_packages(str(ROOT), include=find["include"], exclude=find["exclude"])
    assert "alerts.detection.fall" in packages
    assert "alerts.dispatch" in packages
    assert not [p for p in packages if p.startswith("alerts.evaluate")]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "alerts/evaluate" in ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY alerts ./alerts" in dockerfile  # the context, less .dockerignore's entries


def test_every_fall_model_the_runtime_loads_is_package_data() -> None:
    data = _pyproject()["tool"]["setuptools"]["package-data"]["alerts.detection.fall"]  # type: ignore[index]
    base = ROOT / "alerts" / "detection" / "fall"
    files = [p.relative_to(base).as_posix() for p in (base / "model").rglob("*") if p.is_file()]
    assert {"model/wrist/card.json", "model/waist/card.json"} <= set(files)
    for f in files:
        assert any(fnmatch.fnmatch(f, pattern) for pattern in data), f


def test_the_rooms_are_where_the_readme_says() -> None:
    readme = (ROOT / "README.md").read_text()
    for room in ("alerts/detection/", "alerts/dispatch/", "alerts/notify/", "alerts/evaluate/"):
        assert f"`{room}`" in readme, room
        assert Path(ROOT / room).is_dir(), room
