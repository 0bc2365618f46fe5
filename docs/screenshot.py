"""Screenshots of an HTML report for the docs: the page, and one risky episode opened in its trace viewer.

Usage: python docs/screenshot.py REPORT.html OUT_DIR   (``make screenshots`` does it for the demo run)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import Chromium


def main(report: Path, out: Path) -> int:
    """Write report.png and report-episode.png into ``out``."""
    """Write report.png and report-episode.png into ``out``."""
    with Chromium(1440, 900) as page:
        page.open(report.resolve().as_uri(), "document.querySelectorAll('#episodes-table tbody tr').length > 0")
        page.screenshot(out / "report.png")
        row = page.evaluate("[...document.querySelectorAll('#episodes-table tbody tr')].findIndex("
                            "tr => tr.innerText.includes('ticket-injection-v0') && tr.innerText.includes('risky'))")
        page.click(f"#episodes-table tbody tr:nth-child({row + 1})")
        page.wait_for("document.getElementById('viewer').classList.contains('shown')")
        page.screenshot(out / "report-episode.png", full_page=False)
    print(f"wrote {out / 'report.png'} and {out / 'report-episode.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
