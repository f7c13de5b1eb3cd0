"""The container recipe (``container/``): the image layer and the cephadm mgr spec, as files.

No container engine runs here and the official Ceph images cannot be pulled, so what can be
checked is checked on the files: the Containerfile builds on the ``CEPH_IMAGE`` argument, its
layer is exactly the package's modules at ceph-mgr's module path (no tests), its label carries
the project's version, and the cephadm spec mounts the package read-only onto that same path.
``tests/python39/test_python39.py`` imports the module from exactly that layer under Python 3.9,
the Python of the Squid and early Tentacle images.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from tests.container_layer import (
    CEPHADM_SPEC,
    HOST_COPY,
    MGR_MODULE_PATH,
    PACKAGE,
    REPO,
    containerfile,
    copy_destination,
    labels,
    layer_files,
    package_modules,
    pyproject_version,
)


def test_the_image_builds_on_the_ceph_image_argument() -> None:
    instrs = containerfile()
    first, second = instrs[0], instrs[1]
    assert first.keyword == "ARG", "the base image must be a build argument, before FROM"
    name, _, default = first.args.partition("=")
    assert name == "CEPH_IMAGE"
    assert re.fullmatch(r"quay\.io/ceph/ceph:v\d+\.\d+\.\d+", default), default
    assert second.keyword == "FROM"
    assert second.args in ("${CEPH_IMAGE}", "$CEPH_IMAGE")
    assert [i.keyword for i in instrs].count("FROM") == 1, "one stage: the Ceph image plus files"
    # Files only: nothing runs at build time, so the layer is exactly what COPY says.
    assert {i.keyword for i in instrs} <= {"ARG", "FROM", "LABEL", "COPY"}


def test_the_layer_is_exactly_the_package_modules_at_the_mgr_module_path() -> None:
    files = layer_files()
    expected = {f"{MGR_MODULE_PATH}/{PACKAGE}/{m}" for m in package_modules()}
    assert set(files) == expected, (
        f"missing: {sorted(expected - set(files))}; extra: {sorted(set(files) - expected)}"
    )
    for image_path, source in files.items():
        assert source.parent == REPO / PACKAGE
        assert "tests" not in source.relative_to(REPO).parts
        assert not source.name.startswith(("test_", "conftest")), image_path
    assert f"{MGR_MODULE_PATH}/{PACKAGE}/__init__.py" in files
    assert f"{MGR_MODULE_PATH}/{PACKAGE}/module.py" in files


def test_the_image_label_carries_the_project_version() -> None:
    found = labels(containerfile())
    assert found.get("rbd_snapsched.version") == pyproject_version(), found


def _load_yaml(path: Path) -> Any:
    # Debian's python3-yaml (a dependency of ceph-common): imported by name, no stubs needed.
    yaml = importlib.import_module("yaml")
    return yaml.safe_load(path.read_text())


def test_the_cephadm_spec_mounts_the_package_read_only_onto_the_module_path() -> None:
    spec = _load_yaml(CEPHADM_SPEC)
    assert isinstance(spec, dict)
    assert spec["service_type"] == "mgr"
    assert "placement" in spec
    args = spec["extra_container_args"]
    # Plain strings, no {argument:, split:} mappings: releases before those take only strings.
    assert isinstance(args, list) and all(isinstance(a, str) for a in args), args
    assert args.count("-v") == 1
    volume = args[args.index("-v") + 1]
    source, dest, options = volume.split(":")
    assert source == HOST_COPY
    assert dest == copy_destination() == f"{MGR_MODULE_PATH}/{PACKAGE}"
    assert "ro" in options.split(","), "the mgr must not be able to change the package"
