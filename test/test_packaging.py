"""pyproject.toml: every console script it declares resolves and answers --help."""
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
