"""A report.html as a real browser lays it out: headless Chromium measures what sticks out of the page
and takes a screenshot.

Used by tests/analysis/test_report_layout.py, and by hand on any report:

    .venv/bin/python tests/analysis/report_in_browser.py results/smoke/report.html /tmp/report.png

prints what is wider than the page (nothing, when the layout holds) and writes a full-page screenshot
(1280 px wide) to look at.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capabilities import chromium_binary  # noqa: E402

WIDTH = 1280  # a laptop's browser window
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")

# Appended to a copy of the report: measures the laid-out page and writes the numbers into the DOM,
# which --dump-dom then prints.
MEASURE = """
<script>
window.addEventListener("load", () => {
  const page = document.documentElement;
  const body = document.body.getBoundingClientRect();
  const inScroller = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (["auto", "scroll"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  let title = "";
  const tables = [];
  for (const el of document.querySelectorAll("h1, h2, h3, h4, table")) {
    if (el.tagName !== "TABLE") { title = el.textContent.trim(); continue; }
    const box = el.getBoundingClientRect();
    tables.push({title, right: box.right, width: box.width, scrolls: inScroller(el)});
  }
  const out = document.createElement("pre");
  out.id = "inferload-layout";
  out.textContent = JSON.stringify({viewport: window.innerWidth, page_width: page.scrollWidth,
                                    body_right: body.right, tables});
  document.body.appendChild(out);
});
</script>
"""


@dataclass(frozen=True)
class Layout:
    viewport: int
    page_width: int  # wider than the viewport: the whole page scrolls sideways
    body_right: float
    tables: list[dict]

    def sticking_out(self) -> list[str]:
        """Tables whose right edge passes the page's content edge (not inside their own scroller)."""
        return [f"{t['title'] or 'a table'}: {t['width']:.0f} px wide, right edge {t['right']:.0f} px "
                f"> {self.body_right:.0f} px" for t in self.tables
                if not t["scrolls"] and t["right"] > self.body_right + 1]


def _chromium() -> str:
    found = chromium_binary()
    if found is None:
        raise FileNotFoundError("no headless Chromium (apt-get install chromium)")
    return found


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def measure(report: Path) -> Layout:
    """Lay the report out at WIDTH px in Chromium and read the measurements back."""
    with tempfile.TemporaryDirectory(prefix="inferload-chromium-") as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(report.read_text().replace("</body>", MEASURE + "</body>"))
        done = _run([f"--window-size={WIDTH},900", "--virtual-time-budget=5000", "--dump-dom",
                     copy.as_uri()], Path(tmp) / "profile")
    found = re.search(r'<pre id="inferload-layout">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise RuntimeError(f"Chromium did not lay the page out: {done.stderr[-2000:]}")
    data = json.loads(html.unescape(found.group(1)))
    return Layout(data["viewport"], data["page_width"], data["body_right"], data["tables"])


def screenshot(report: Path, png: Path, height: int = 9000) -> Path:
    """A screenshot of the page's first `height` px at WIDTH px wide."""
    with tempfile.TemporaryDirectory(prefix="inferload-chromium-") as tmp:
        done = _run([f"--window-size={WIDTH},{height}", "--virtual-time-budget=5000",
                     f"--screenshot={png.resolve()}", report.resolve().as_uri()], Path(tmp) / "profile")
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot: {done.stderr[-2000:]}")
    return png


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report, png = Path(argv[0]), Path(argv[1])
    layout = measure(report)
    problems = layout.sticking_out()
    if layout.page_width > layout.viewport:
        problems.append(f"the page is {layout.page_width} px wide in a {layout.viewport} px window")
    print("\n".join(problems) or f"nothing sticks out of the page at {WIDTH} px")
    print(f"screenshot: {screenshot(report, png)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
