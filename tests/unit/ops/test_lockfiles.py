"""The lock files (`make lock` writes them with uv): every dependency pyproject.toml names, the
runtime ones and the dev extra's, is pinned to one version it allows, with hashes, and the
installs (`make install`, the Dockerfile) take them with `--require-hashes`."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.ops.promql import ROOT

RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Pin]:
    """`name==version --hash=…` entries by canonical name (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    pins: dict[str, Pin] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split(" --")
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", requirement.strip())
        assert match, f"{path.name}: not an exact pin: {line!r}"
        hashes = tuple(o.removeprefix("hash=") for o in options if o.startswith("hash=sha256:"))
        name = canonicalize_name(match[1])
        assert name not in pins, f"{path.name}: {name} twice"
        pins[name] = Pin(name, match[2], hashes)
    return pins


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(text) for text in project["dependencies"]]
    dev = [Requirement(text) for text in project["optional-dependencies"]["dev"]]
    return runtime, dev


@pytest.mark.parametrize(
    ("lock", "which"),
    [(RUNTIME_LOCK, "runtime"), (DEV_LOCK, "runtime"), (DEV_LOCK, "dev")],
)
def test_every_declared_dependency_is_pinned_with_hashes(lock: Path, which: str) -> None:
    runtime, dev = declared()
    pins = read_lock(lock)
    for requirement in runtime if which == "runtime" else dev:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in {lock.name}: run make lock"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{lock.name} pins {pin.name}=={pin.version}, pyproject.toml wants {requirement}: "
            "run make lock"
        )
        assert pin.hashes, f"{pin.name} has no hash in {lock.name}"


def test_every_locked_package_has_a_hash_and_the_two_files_agree() -> None:
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    for pins, lock in ((runtime, RUNTIME_LOCK), (dev, DEV_LOCK)):
        assert all(pin.hashes for pin in pins.values()), lock.name
    # The dev set is the runtime set plus tools: what the tests run is what the image runs.
    assert set(runtime) <= set(dev)
    assert {name: dev[name].version for name in runtime} == {
        name: pin.version for name, pin in runtime.items()
    }
    assert "deploy-monitor" not in dev, "the project itself is installed with --no-deps"


def test_the_installs_check_the_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps -e ." in makefile
    dockerfile = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    assert re.search(r"pip install [^\n]*--require-hashes [^\n]*-r requirements\.lock", dockerfile)
    assert re.search(r"pip install [^\n]*--no-deps \.", dockerfile)
