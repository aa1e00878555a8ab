"""Real headless Chromium driven over the Chrome DevTools Protocol (websocket-client), for page tests.

    with Chromium(tmp_path / "profile") as page:
        page.open(Path("out/report.html").as_uri())
        page.evaluate("document.title")
        page.screenshot(Path("shot.png"))

`chromium_path()` is None where no Chromium is installed: tests skip then (CI installs the Debian
package, see .ci/run).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--remote-debugging-port=0",
         "--window-size=1400,1000"]


def chromium_path() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    def __init__(self, profile_dir: Path, timeout_s: float = 30.0):
        self.profile_dir = Path(profile_dir)
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def __enter__(self) -> "Chromium":
        import websocket

        exe = chromium_path()
        if exe is None:
            raise RuntimeError("no chromium on PATH")
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile_dir}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout_s) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=self.timeout_s,
                                              suppress_origin=True)
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing a dead socket
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _port(self) -> int:
        """Chromium writes the port it picked to DevToolsActivePort in the profile."""
        marker = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def send(self, method: str, params: Optional[dict] = None) -> dict[str, Any]:
        self._next_id += 1
        mine = self._next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str) -> dict[str, Any]:
        for e in self.events:
            if e["method"] == method:
                return e
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(f"no {method} event")

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def failed_requests(self) -> list[dict[str, Any]]:
        """Requests the page made that failed (a missing file, a blocked load). A media request the
        player itself aborts once it has what it needs (`preload="metadata"` reads the head of a
        file, then cancels) is not a failure; the player's own error state says if it was."""
        urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in self.events if e["method"] == "Network.requestWillBeSent"}
        out = []
        for e in self.events:
            p = e["params"]
            if e["method"] != "Network.loadingFailed":
                continue
            if p.get("type") == "Media" and (p.get("canceled") or p.get("errorText") == "net::ERR_ABORTED"):
                continue
            out.append({"url": urls.get(p["requestId"]), "error": p.get("errorText"), "type": p.get("type")})
        return out

    def screenshot(self, path: Path, width: int = 1400, max_height: int = 8000) -> Path:
        height = int(self.evaluate("document.documentElement.scrollHeight") or 1000)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": min(height, max_height), "deviceScaleFactor": 1, "mobile": False})
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


#: what a page test reads back: each player's duration once its metadata loaded (and whether the
#: first one plays), every link and image, the section headings, the heatmap cells and histogram bars
MEDIA_CHECK = """
(async () => {
  const audios = [...document.querySelectorAll('audio')];
  const ready = a => a.readyState >= 1 ? Promise.resolve() : new Promise(res => {
    a.addEventListener('loadedmetadata', res, {once: true});
    a.addEventListener('error', res, {once: true});
  });
  await Promise.race([Promise.all(audios.map(ready)), new Promise(res => setTimeout(res, 20000))]);
  const first = audios[0];
  let played = 0;
  if (first) {
    first.muted = true;
    try {
      await first.play();
      await new Promise(res => setTimeout(res, 400));
      played = first.currentTime;
      first.pause();
    } catch (e) {
      played = -1;  // the player refused: no playable source
    }
  }
  return {
    audio: audios.map(a => ({src: a.currentSrc, duration: a.duration, error: a.error ? a.error.code : null})),
    played: played,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    images: [...document.images].map(i => ({src: i.currentSrc, ok: i.complete && i.naturalWidth > 0})),
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    heatCells: document.querySelectorAll('table.heat td.cell').length,
    histBars: document.querySelectorAll('.hist .col').length,
  };
})()
"""


def inspect_page(path: Path, profile_dir: Path, screenshot: Optional[Path] = None) -> tuple[dict, list[dict]]:
    """Open a local page in headless Chromium: (what MEDIA_CHECK saw, the requests that failed)."""
    with Chromium(profile_dir) as page:
        page.open(Path(path).resolve().as_uri())
        seen = page.evaluate(MEDIA_CHECK)
        failed = page.failed_requests()
        if screenshot is not None:
            page.screenshot(screenshot)
    return seen, failed
