"""`ctrust serve`: bad input is one line and exit 2; the page works in a real headless Chromium.

The browser test drives Chromium through the DevTools protocol (aiohttp's websocket client, a
dependency of textual-serve): it opens the page, waits for the app's first bytes, takes a
screenshot and checks it shows a rendered app, then checks the server's process tree: one
`ctrust browse` per open tab, gone when its tab closes. Without Chromium it skips, naming the fix
(`make test-browser` installs it on Debian).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SAVE_SHOT = os.environ.get("CTRUST_SERVE_SCREENSHOT")  # e.g. docs/images/ctrust-serve.png to refresh the README's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ctrust(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ctrust_tui.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


# ------------------------------------------------------------------------------ bad input
def test_port_in_use_is_one_line_and_exit_2(fixture_db: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = _ctrust("serve", "--db", str(fixture_db), "--port", str(port))
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"error: port {port} on 127.0.0.1 is already in use; pick another with --port"


@pytest.mark.parametrize(("args", "needle"), [
    (["--host", "no-such-host.invalid"], "is not an address or a name this machine can resolve"),
    (["--port", "70000"], "is not a TCP port"),
])
def test_bad_address_is_one_line_and_exit_2(fixture_db: Path, args: list[str], needle: str) -> None:
    res = _ctrust("serve", "--db", str(fixture_db), *args)
    assert res.returncode == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_file_that_is_not_a_ctrust_cache_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(b"not sqlite at all" * 10)
    res = _ctrust("serve", "--db", str(other), "--port", str(_free_port()))
    assert res.returncode == 2 and "not a SQLite database" in res.stderr, res.stderr
    missing = _ctrust("serve", "--db", str(tmp_path / "none.db"), "--port", str(_free_port()))
    assert missing.returncode == 2 and "no such cache file" in missing.stderr


def test_local_by_default_and_says_so_when_shared(fixture_db: Path) -> None:
    """127.0.0.1 unless --host says otherwise; a network-wide bind warns what it exposes."""
    for host, needle in (("127.0.0.1", "this machine only"), ("0.0.0.0", "anyone who can reach this address")):
        port = _free_port()
        args = ["serve", "--db", str(fixture_db), "--port", str(port)] + (["--host", host] if host != "127.0.0.1" else [])
        proc = subprocess.Popen([sys.executable, "-m", "ctrust_tui.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            first = proc.stdout.readline()
            assert needle in first and f":{port}" in first, first
        finally:
            proc.terminate()
            proc.wait(timeout=30)


# ------------------------------------------------------------------------------ real browser
def png_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct RGB colours) of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, prev, colours = zlib.decompress(idat), width * bpp, bytearray(width * bpp), set()
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        f, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                cur[i] = (cur[i] + a) & 255
            elif f == 2:
                cur[i] = (cur[i] + b) & 255
            elif f == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(cur[i:i + 3]) for i in range(0, stride, bpp * 4))  # every 4th pixel
        prev = cur
    return width, height, len(colours)


class DevTools:
    """The few DevTools-protocol calls the test needs, over one websocket."""

    def __init__(self, ws) -> None:
        self.ws, self.n = ws, 0

    async def call(self, method: str, **params):
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg.get("result", {})


def _browse_processes(server_pid: int) -> list:
    import psutil

    out = []
    for p in psutil.Process(server_pid).children(recursive=True):
        try:
            if "browse" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


async def _wait(cond, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if await cond():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: `make test-browser` installs the Debian "
                                             "package `chromium` and runs this test")
def test_serve_renders_in_headless_chromium_one_process_per_tab(fixture_db: Path, tmp_path: Path) -> None:
    asyncio.run(_browser_session(fixture_db, tmp_path))


async def _browser_session(db: Path, tmp_path: Path) -> None:
    import aiohttp

    port, devtools_port = _free_port(), _free_port()
    server = subprocess.Popen([sys.executable, "-m", "ctrust_tui.cli", "--db", str(db), "serve", "--port", str(port)],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    chrome = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--remote-debugging-port={devtools_port}", f"--user-data-dir={tmp_path / 'profile'}",
                               "--window-size=1280,720", "about:blank"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def get(url: str) -> bytes:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()

        async def up(url: str) -> bool:
            try:
                get(url)
                return True
            except OSError:
                return False

        await _wait(lambda: up(f"http://127.0.0.1:{port}/"), 120, "ctrust serve to listen")
        await _wait(lambda: up(f"http://127.0.0.1:{devtools_port}/json/version"), 60, "Chromium's DevTools")
        browser_ws = json.loads(get(f"http://127.0.0.1:{devtools_port}/json/version"))["webSocketDebuggerUrl"]
        assert _browse_processes(server.pid) == []  # nothing runs before a tab connects
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(browser_ws, max_msg_size=0) as bws:
                browser = DevTools(bws)

                async def new_tab() -> tuple[str, str]:  # (target id, its websocket)
                    target = (await browser.call("Target.createTarget", url="about:blank"))["targetId"]
                    pages = {t["id"]: t for t in json.loads(get(f"http://127.0.0.1:{devtools_port}/json/list"))}
                    return target, pages[target]["webSocketDebuggerUrl"]

                tabs = [await new_tab()]
                async with http.ws_connect(tabs[0][1], max_msg_size=0) as pws:
                    page = DevTools(pws)
                    await page.call("Page.enable")
                    await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=720,
                                    deviceScaleFactor=1, mobile=False)
                    await page.call("Emulation.setFocusEmulationEnabled", enabled=True)  # a focused tab: no dimming
                    await page.call("Page.navigate", url=f"http://127.0.0.1:{port}/")

                    async def first_bytes() -> bool:  # textual-serve marks the page when the app has drawn
                        r = await page.call("Runtime.evaluate", returnByValue=True,
                                            expression="!!document.body && document.body.classList.contains('-first-byte')")
                        return r.get("result", {}).get("value") is True

                    await _wait(first_bytes, 180, "the app's first frame in the page")
                    await asyncio.sleep(3.0)  # let the first full frame paint
                    shot = base64.b64decode((await page.call("Page.captureScreenshot", format="png"))["data"])
                    (tmp_path / "serve.png").write_bytes(shot)
                    if SAVE_SHOT:
                        Path(SAVE_SHOT).write_bytes(shot)
                    width, height, colours = png_colours(shot)
                    assert (width, height) == (1280, 720)
                    assert colours >= 8, f"screenshot looks blank ({colours} colours): {tmp_path / 'serve.png'}"
                    tabs.append(await new_tab())  # a second tab: a second `ctrust browse`
                    async with http.ws_connect(tabs[1][1], max_msg_size=0) as pws2:
                        await DevTools(pws2).call("Page.navigate", url=f"http://127.0.0.1:{port}/")

                    async def count(n: int):
                        async def check() -> bool:
                            return len(_browse_processes(server.pid)) == n
                        return check

                    await _wait(await count(2), 120, "one `ctrust browse` per open tab (2)")
                    await browser.call("Target.closeTarget", targetId=tabs[1][0])
                    await _wait(await count(1), 60, "the closed tab's `ctrust browse` to exit")
                await browser.call("Target.closeTarget", targetId=tabs[0][0])
                await _wait(await count(0), 60, "every `ctrust browse` to exit once no tab is open")
    finally:
        chrome.terminate()
        server.terminate()
        out = server.communicate(timeout=30)[0]
        chrome.wait(timeout=30)
    assert "Traceback" not in out, out[-3000:]
