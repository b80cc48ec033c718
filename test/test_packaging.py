"""pyproject.toml: every console script it declares resolves and answers --help; the container
builds on the torch the tests run."""
from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_the_documented_console_scripts_are_declared():
    assert {"lmc-predict", "lmc-score", "lmc-simulate", "lmc-train-vqgan", "lmc-train-pix2pix",
            "lmc-export"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_answers_help(name, monkeypatch, capsys):
    module, _, function = SCRIPTS[name].partition(":")
    entry = getattr(importlib.import_module(module), function)
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as exc:
        entry()          # console scripts call the entry point without arguments
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_the_container_and_the_tests_pin_the_same_torch():
    import re

    import torch
    dockerfile = (REPO / "Dockerfile").read_text()
    (pinned_image,) = re.findall(r"^ARG TORCH_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    (base_tag,) = re.findall(r"^ARG BASE_IMAGE=\S+:(\S+)$", dockerfile, re.MULTILINE)
    (pinned_env,) = re.findall(r"torch==(\S+)", (REPO / "scripts" / "setup_env.sh").read_text())
    assert pinned_image == pinned_env == torch.__version__.split("+")[0]
    assert base_tag.startswith(pinned_image + "-")     # the default base image carries that torch
    assert "sys.exit(0 if v == '${TORCH_VERSION}'" in dockerfile      # and the build checks it
