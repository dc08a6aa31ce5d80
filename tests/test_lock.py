"""The lock files (requirements/*.txt, made by scripts/lock.sh with pip-compile) agree with
pyproject.toml: every declared dependency is pinned, at a version its specifier allows, with
hashes; nothing is pinned as the project's own requirement that pyproject.toml no longer
declares; the runtime pins are the dev lock's too (issue 16 item 4)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
OWN = re.compile(r"eldercare \(pyproject\.toml(::[a-z.-]+)?\)")


@dataclass
class Pin:
    version: Version
    hashes: int = 0
    direct: bool = False  # "via eldercare (pyproject.toml)": pinned as the project's own need


@dataclass
class Lock:
    pins: dict[str, Pin] = field(default_factory=dict)


def read_lock(text: str) -> Lock:
    lock = Lock()
    current: Pin | None = None
    for line in text.splitlines():
        if m := PIN.match(line):
            current = Pin(Version(m.group(2)))
            lock.pins[canonicalize_name(m.group(1))] = current
        elif current is not None and "--hash=sha256:" in line:
            current.hashes += 1
        elif current is not None and OWN.search(line):
            current.direct = True
    return lock


def _lock(name: str) -> Lock:
    return read_lock((ROOT / "requirements" / name).read_text())


def _requirements(*groups: str) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for g in groups:
        raw = (
            PYPROJECT["project"]["dependencies"]
            if g == "runtime"
            else PYPROJECT["project"]["optional-dependencies"][g]
            if g != "build"
            else PYPROJECT["build-system"]["requires"]
        )
        for spec in raw:
            r = Requirement(spec)
            out[canonicalize_name(r.name)] = r
    return out


def disagreements(lock: Lock, wanted: dict[str, Requirement]) -> list[str]:
    problems = []
    for name, req in sorted(wanted.items()):
        pin = lock.pins.get(name)
        if pin is None:
            problems.append(f"{name}: declared ({req}) but not locked")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{name}: locked {pin.version} outside {req.specifier}")
    for name, pin in sorted(lock.pins.items()):
        if pin.hashes == 0:
            problems.append(f"{name}: pinned without a hash")
        if pin.direct and name not in wanted:
            problems.append(f"{name}: locked as the project's own need, no longer declared")
    return problems


@pytest.mark.parametrize(
    ("lock_file", "groups"),
    [("main.txt", ("runtime",)), ("dev.txt", ("runtime", "dev")), ("build.txt", ("build",))],
)
def test_the_lock_agrees_with_pyproject(lock_file: str, groups: tuple[str, ...]) -> None:
    problems = disagreements(_lock(lock_file), _requirements(*groups))
    assert not problems, "run scripts/lock.sh:\n" + "\n".join(problems)


def test_the_dev_lock_keeps_the_runtime_pins() -> None:
    main, dev = _lock("main.txt"), _lock("dev.txt")
    differ = {
        n: (p.version, dev.pins[n].version if n in dev.pins else None)
        for n, p in main.pins.items()
        if n not in dev.pins or dev.pins[n].version != p.version
    }
    assert not differ


def test_the_check_finds_each_kind_of_disagreement() -> None:
    lock = read_lock(
        "alpha==1.0 \\\n    --hash=sha256:aa\n    # via eldercare (pyproject.toml)\n"
        "beta==2.0 \\\n    --hash=sha256:bb\n    # via\n    #   alpha\n    #   eldercare (pyproject.toml)\n"
        "gamma==3.0\n    # via alpha\n"
    )
    wanted = {"alpha": Requirement("alpha>=2"), "delta": Requirement("delta")}
    assert disagreements(lock, wanted) == [
        "alpha: locked 1.0 outside >=2",
        "delta: declared (delta) but not locked",
        "beta: locked as the project's own need, no longer declared",
        "gamma: pinned without a hash",
    ]
