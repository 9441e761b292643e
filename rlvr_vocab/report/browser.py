"""The report as a person sees it: headless Chromium renders the page to a PNG, offline."""

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def screenshot(html_file: Path, png: Path, width: int = 1280, height: int = 2400, timeout_s: float = 120
               ) -> list[str]:
    """The page as a person sees it: headless Chromium (Debian's `chromium`) renders `html_file` to `png`, offline.

    Returns the page's console messages (Chromium logs errors and `console.*` alike as CONSOLE; the report has no
    scripts, so any is a fault); raises if no PNG was written.
    """
    chromium = shutil.which("chromium") or CHROMIUM
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)  # a PNG left from before must not pass for this one
    with tempfile.TemporaryDirectory(prefix="rlvr-chromium-") as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
             Path(html_file).resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout_s)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
