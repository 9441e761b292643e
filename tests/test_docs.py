"""The README and docs/: links that resolve, a README that stays short, and no run output tracked in git."""

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) and ![alt](target), the target up to a space (an optional "title") or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())  # code blocks hold commands, not links
    text = re.sub(r"`[^`\n]*`", "", text)  # nor does inline code
    return LINK.findall(text)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading '#{anchor}' in {dest.relative_to(REPO)}")
    assert not broken, broken


def test_the_docs_pages_are_linked_from_the_readme():
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(REPO / "README.md")}
    assert not [p.name for p in PAGES[1:] if p.resolve() not in linked]


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move reference material to docs/"


def test_the_anchor_rule():
    page = REPO / "docs" / "operations.md"
    assert {"hang-watchdog-watchdog", "timeouts-and-preemption"} <= anchors(page)


def test_no_run_output_is_tracked():
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=REPO, capture_output=True, text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "experiments"], cwd=REPO, capture_output=True, text=True, check=True)
    assert tracked.stdout.split() == ["experiments/.gitkeep"]


def test_files_page_names_every_module_and_only_those():
    page = (REPO / "docs" / "files.md").read_text()
    named = set(re.findall(r"^\s+([\w/]+\.py)\b", page, re.M))
    modules = {str(p.relative_to(REPO / "rlvr_vocab")) for p in (REPO / "rlvr_vocab").rglob("*.py")
               if p.name != "__init__.py" or len(ast.parse(p.read_text()).body) > 1}  # a package with code
    assert sorted(modules - named) == [], "modules docs/files.md does not list"
    assert sorted(named - modules) == [], "docs/files.md lists modules that do not exist"
