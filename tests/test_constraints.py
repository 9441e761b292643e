"""The pip path installs what uv.lock pins: constraints.txt is uv.lock's export, package for package."""

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_every_locked_package_at_its_locked_version():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {(_canonical(p["name"]), p["version"]) for p in lock["package"]
              if p.get("source", {}).get("editable") is None and p.get("source", {}).get("virtual") is None}
    pinned = set()
    for line in (REPO / "constraints.txt").read_text().splitlines():
        requirement = line.split(";", 1)[0].strip()
        if requirement and not requirement.startswith("#"):
            name, version = requirement.split("==")
            pinned.add((_canonical(name), version))
    differ = sorted(pinned ^ locked)[:10]
    assert not differ, f"constraints.txt and uv.lock differ: {differ} (re-run the uv export in its header)"
