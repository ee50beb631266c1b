"""One lock: the image that trains and serves installs the libraries of requirements.lock, at its pins."""

from __future__ import annotations

import ast
import re

from ci_testkit import REPO

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")
# import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml"}


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not an exact pin"
        found[match[1].lower()] = match[2]
    return found


def third_party_imports() -> set[str]:
    import sys

    names = set()
    for path in (REPO / "ml").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    own = {p.stem for p in (REPO / "ml").glob("*.py")} | {"ml", "__future__"}
    return {n for n in names if n not in sys.stdlib_module_names and n not in own}


def test_the_image_pins_are_the_lock_pins():
    lock, image = pins(REPO / "requirements.lock"), pins(REPO / "container" / "requirements.txt")
    assert image, "container/requirements.txt pins nothing"
    assert {name: version for name, version in image.items() if lock.get(name) != version} == {}


def test_the_image_has_every_library_ml_imports():
    image = pins(REPO / "container" / "requirements.txt")
    missing = {DISTRIBUTION.get(n, n).lower() for n in third_party_imports()} - set(image)
    assert missing == set()


def test_the_dockerfile_installs_under_the_lock_as_constraints():
    text = (REPO / "container" / "Dockerfile").read_text()
    assert "COPY requirements.lock" in text
    assert re.search(r"pip install .*-r \S*requirements\.txt -c \S*requirements\.lock", text)
