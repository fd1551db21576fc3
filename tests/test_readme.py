"""The README stays true: its configuration table lists every setting the code reads."""

from __future__ import annotations

from pathlib import Path

from streamia import platform

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_lists_every_environment_variable_with_its_default():
    text = README.read_text()
    table = text.split("<!-- env-table:start -->")[1].split("<!-- env-table:end -->")[0].strip()
    assert table == platform.env_table(), "run `.venv/bin/streamia env --write-readme`"


def test_the_quick_start_has_exactly_the_two_commands():
    quick = README.read_text().split("## Quick start")[1].split("##")[0]
    block = quick.split("```sh")[1].split("```")[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in block] == [
        "python3 run.py up",
        "python3 run.py test",
    ]
