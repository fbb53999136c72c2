"""The documentation: a README a newcomer can read, every setting documented in
`.env.example` and on the configuration page, and no link that leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

from persona.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_setting_is_in_env_example_and_on_the_configuration_page() -> None:
    example = (ROOT / ".env.example").read_text()
    page = (ROOT / "docs" / "configuration.md").read_text()
    for field in Settings.model_fields:
        assert f"{env_name(field)}=" in example, f"{env_name(field)} missing from .env.example"
        assert f"`{env_name(field)}`" in page, f"{env_name(field)} missing from docs/configuration.md (scripts/settings_table.py)"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M):
        found.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return found


def test_every_relative_link_leads_somewhere() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
