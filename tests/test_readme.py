"""The README stays true: its configuration table lists every setting the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


ROOT = README.parent
SHARED_API = ROOT.parent / "shared" / "API.md"


def test_the_readme_links_only_to_files_inside_the_repository():
    links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", README.read_text())
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert local, "the README links into docs/"
    for link in local:
        target = (ROOT / link).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), link


def test_docs_api_md_is_the_shared_contract():
    """The contract travels with the code; where the shared copy exists, docs/api.md is that
    text word for word, followed only by the additions this repository made since."""
    if not SHARED_API.exists():
        pytest.skip(f"{SHARED_API} is not on this machine")
    ours = (ROOT / "docs" / "api.md").read_text()
    shared = SHARED_API.read_text()
    assert ours.startswith(shared), "copy ../shared/API.md to the top of docs/api.md"
    rest = ours[len(shared) :]
    assert not rest or rest.startswith("\n## Additions made in this repository"), (
        "anything after the shared text goes under one 'Additions made in this repository' section"
    )


def test_the_kit_readme_names_every_kit_module():
    kit = README.parent / "packages" / "streamia-kit"
    text = (kit / "README.md").read_text()
    modules = sorted(p.stem for p in (kit / "src" / "streamia_kit").glob("*.py"))
    missing = [m for m in modules if m != "__init__" and f"`{m}`" not in text]
    assert not missing, f"describe {missing} in packages/streamia-kit/README.md"


def _layout(text: str, heading: str) -> list[str]:
    """The folders a Layout block lists, one per line (its first word)."""
    block = text.split(heading)[1].split("```")[1]
    return [line.split()[0] for line in block.strip().splitlines()]


def test_the_layout_in_the_readme_and_the_architecture_page_lists_every_folder():
    listed = _layout(README.read_text(), "## Layout")
    assert listed == _layout((ROOT / "docs" / "architecture.md").read_text(), "## 7. Layout")
    # `services/<name>/tests/{unit,integration}/` is a pattern: tests/test_layout.py holds it.
    folders = {entry for entry in listed if "<" not in entry}
    missing = sorted(f for f in folders if not (ROOT / f).is_dir())
    assert not missing, f"the Layout lists folders that do not exist: {missing}"

    def present(parent: str) -> set[str]:
        return {
            f"{parent}{p.name}/"
            for p in (ROOT / parent).iterdir()
            if p.is_dir() and not p.name.startswith((".", "_"))
        }

    unlisted = (present("") | present("packages/") | present("services/") | present("tests/")) - (
        folders | {"packages/", "services/", "src/"}
    )
    assert not unlisted, f"add {sorted(unlisted)} to the Layout (README and docs/architecture.md)"
