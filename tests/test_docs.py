"""Every document the repository cites is in the repository (docs/ holds the design, environment and
style), and every docs/ page is reachable from docs/README.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CITED = re.compile(r"[A-Za-z0-9_./-]*[A-Za-z0-9_]\.md\b")
SOURCES = (".py", ".md", ".sh", ".cfg", ".toml", ".yaml", ".xml", ".in", "Makefile")


SKIP_DIRS = {".git", ".venv", ".cache", "build", "install", "log", "out", "node_modules", "__pycache__"}


def _sources() -> list[Path]:
    """The repository's own text files (not the venv, build outputs or test data)."""
    out = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        if Path(root) == REPO / "tests":
            dirs[:] = [d for d in dirs if d != "data"]
        out += [Path(root) / f for f in files if f.endswith(SOURCES)]
    return [f for f in out if f != Path(__file__).resolve()]  # this file names missing ones on purpose


def unresolved_citations(files: list[Path], repo: Path = REPO) -> list[str]:
    """`file: name.md` for each cited document found neither next to the citing file, nor at the
    repository root, nor in docs/."""
    bad = []
    for path in files:
        for name in set(CITED.findall(path.read_text(errors="replace"))):
            if not any((base / name).is_file() for base in (path.parent, repo, repo / "docs")):
                bad.append(f"{path.relative_to(repo)}: {name}")
    return sorted(bad)


def test_every_cited_document_is_in_the_repository() -> None:
    files = _sources()
    assert len(files) > 100
    bad = unresolved_citations(files)
    assert not bad, "documents cited but not in the repository:\n" + "\n".join(bad)


def test_a_missing_document_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "style.md").write_text("")
    code = tmp_path / "a.py"
    code.write_text('"""See docs/style.md and DESIGN.md."""\n')
    assert unresolved_citations([code], tmp_path) == ["a.py: DESIGN.md"]


def test_docs_index_links_every_page() -> None:
    index = (REPO / "docs" / "README.md").read_text()
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert pages and all(f"({p})" in index for p in pages), sorted(pages)
