"""Open an HTML report in headless Chromium and report what a reader would see.

Drives Debian's ``chromium`` over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages, NUL-terminated, commands on fd 3, replies and events on fd 4), so no
WebSocket client or browser download is needed. :func:`check_page` loads a page, waits for
its load event and returns every ``<img>`` with whether it rendered, every console error,
uncaught exception and failed resource load, and a full-page PNG screenshot.

Example::

    >>> page = check_page("gsc-demo/report.html")            # doctest: +SKIP
    >>> page.broken_images, page.errors                        # doctest: +SKIP
    ([], [])
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BrowserError", "PageCheck", "check_page", "find_chromium"]

_IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => {
  const r = i.getBoundingClientRect();
  return {src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0,
          width: i.naturalWidth, height: i.naturalHeight,
          box: [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]};
}))"""


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


@dataclass
class PageCheck:
    """What headless Chromium saw on one page."""

    url: str
    images: list[dict] = field(default_factory=list)   # src, ok, width, height, box
    errors: list[str] = field(default_factory=list)    # console errors, exceptions, failed loads
    screenshot_png: bytes = b""

    @property
    def broken_images(self) -> list[str]:
        return [img["src"] for img in self.images if not img["ok"]]


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$GSC_CHROMIUM`` first), or None."""
    env = os.environ.get("GSC_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    """The DevTools protocol over the browser's fd pair: send commands, collect events."""

    def __init__(self, write_fd: int, read_fd: int):
        self._out = os.fdopen(write_fd, "wb", buffering=0)
        self._in = os.fdopen(read_fd, "rb", buffering=0)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := self._in.read(65536):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cond.notify_all()

    def call(self, method: str, session: str | None = None, timeout: float = 30.0,
             **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self._out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next_id not in self._replies:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise BrowserError(f"no reply to {method} within {timeout:g} s")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if ev.get("method") == method:
                        return ev
                if not self._cond.wait(max(deadline - time.monotonic(), 0)) and \
                        time.monotonic() >= deadline:
                    raise BrowserError(f"no {method} within {timeout:g} s")

    def close(self) -> None:
        self._out.close()


def _errors(events: list[dict]) -> list[str]:
    found = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            found.append("exception: " + details.get("exception", {}).get(
                "description", details.get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            found.append(f"log: {entry.get('text', '')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            found.append(f"load failed: {p.get('errorText', '')}")
    return found


def check_page(path: str | os.PathLike, width: int = 1200, timeout: float = 60.0,
               chromium: str | None = None) -> PageCheck:
    """Load ``path`` in headless Chromium; its images, errors and a full-page screenshot.

    Input: a local HTML file. Output: :class:`PageCheck`. Raises :class:`BrowserError`
    when no Chromium is installed or it does not answer within ``timeout`` seconds.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("no chromium on PATH (make setup installs Debian's chromium)")
    url = Path(path).resolve().as_uri()
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def _wire_fds() -> None:  # runs in the child: the protocol's fds 3 (in) and 4 (out)
        read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
        os.dup2(read_end, 3)  # dup2 onto another fd clears close-on-exec
        os.dup2(write_end, 4)

    with tempfile.TemporaryDirectory(prefix="gsc-chromium-") as profile:
        args = [binary, "--headless=new", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--allow-file-access-from-files", f"--user-data-dir={profile}",
                f"--window-size={width},900", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        proc = subprocess.Popen(args, preexec_fn=_wire_fds, close_fds=False,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            return _load(pipe, url, width, timeout)
        finally:
            pipe.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _load(pipe: _Pipe, url: str, width: int, timeout: float) -> PageCheck:
    target = pipe.call("Target.createTarget", url="about:blank", timeout=timeout)["targetId"]
    session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session)
    pipe.call("Emulation.setDeviceMetricsOverride", session, width=width, height=900,
              deviceScaleFactor=1, mobile=False)
    nav = pipe.call("Page.navigate", session, url=url)
    if nav.get("errorText"):
        raise BrowserError(f"{url}: {nav['errorText']}")
    pipe.wait_event("Page.loadEventFired", timeout)
    images = json.loads(pipe.call("Runtime.evaluate", session, expression=_IMAGES_JS,
                                  returnByValue=True)["result"]["value"])
    size = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]
    shot = pipe.call("Page.captureScreenshot", session, format="png",
                     captureBeyondViewport=True,
                     clip={"x": 0, "y": 0, "width": size["width"],
                           "height": min(size["height"], 16000), "scale": 1})
    check = PageCheck(url=url, images=images, errors=_errors(pipe.events),
                      screenshot_png=base64.b64decode(shot["data"]))
    try:
        pipe.call("Browser.close", timeout=5)
    except (BrowserError, OSError):
        pass  # the browser may exit before it answers
    return check
