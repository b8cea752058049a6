"""`ctrust serve`: the read-only browser (`ctrust browse`) in a web page, via textual-serve.

textual-serve starts one `ctrust browse` process per browser tab (over a websocket) and ends it
when the tab closes. The page shows everything in the cache, so it binds to 127.0.0.1 unless the
user names another host, and says so. Nothing here imports torch.
"""

from __future__ import annotations

import errno
import ipaddress
import shlex
import socket
import sys
from pathlib import Path

from .errors import CtrustError

LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_local(host: str) -> bool:
    """True for loopback names and addresses (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int) -> None:
    """Fail with one line before the server starts if host:port cannot be listened on."""
    if not 1 <= port <= 65535:
        raise CtrustError(f"--port {port} is not a TCP port (1-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise CtrustError(f"--host {host!r} is not an address or a name this machine can resolve") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is no conflict
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CtrustError(f"port {port} on {host} is already in use; pick another with --port") from None
            if exc.errno == errno.EACCES:
                raise CtrustError(f"no permission to listen on port {port}; use a port above 1023") from None
            raise CtrustError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def browse_command(db_path: Path, models_dir: Path) -> str:
    """The shell command textual-serve runs per tab: this interpreter's `ctrust browse` on this cache.

    `exec` replaces the shell, so each tab is exactly one process that ends with the tab.
    """
    args = [sys.executable, "-m", "ctrust_tui.cli", "--db", str(db_path.resolve()),
            "--models-dir", str(models_dir.resolve()), "browse"]
    return "exec " + " ".join(shlex.quote(a) for a in args)


def serve(db_path: Path, models_dir: Path, host: str, port: int) -> None:
    """Validate the cache and the address, then serve until Ctrl-C."""
    from textual_serve.server import Server

    from .store import open_store

    open_store(db_path, readonly=True).close()  # not a cache, or not ctrust's: one line, before listening
    check_bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    if is_local(host):
        print(f"serving the read-only browser of {db_path} on {url} (this machine only; --host 0.0.0.0 "
              "shares it with the network)", flush=True)
    else:
        print(f"serving the read-only browser of {db_path} on {url}: anyone who can reach this address "
              "can read every prompt and output in the cache", flush=True)
    Server(browse_command(db_path, models_dir), host=host, port=port, title="ctrust browse",
           public_url=url).serve()
