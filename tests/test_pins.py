"""requirements.txt and environment.yml must pin the same packages to the same versions."""

import re

import yaml
from conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")


def parse(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r} (use name==version)"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def requirements() -> dict[str, str]:
    return parse((ROOT / "requirements.txt").read_text().splitlines())


def conda_pip() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml should have one pip: section"
    return parse(pip_sections[0])


def test_environment_yml_carries_the_same_pins():
    assert conda_pip() == requirements()


def test_torch_is_pinned_to_the_cpu_safe_version():
    assert requirements()["torch"] == "2.13.0"


def test_no_torchvision():
    assert "torchvision" not in requirements()


def test_parse_rejects_loose_pins():
    import pytest

    with pytest.raises(AssertionError, match="not an exact pin"):
        parse(["numpy>=2"])
    assert parse(["Scikit_Learn==1.0  # comment", ""]) == {"scikit-learn": "1.0"}
