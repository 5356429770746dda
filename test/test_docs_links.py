"""README.md and docs/*.md link only to files in the repository, and the README stays a front page."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def _docs():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_relative_links_resolve_in_a_clone():
    broken = []
    for doc in _docs():
        for target, _ in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+://", target):
                continue
            path = (doc.parent / target).resolve()
            if not path.exists() or not path.is_relative_to(ROOT):  # a clone has nothing outside the repository
                broken.append(f"{doc.name}: {target}")
    assert not broken, broken


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text and "rtc/chunk" in text and "servo process" in text
