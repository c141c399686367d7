"""A real package registry for tests: wheels and sdists written by hand, laid out as a PEP 503
simple index, served over HTTP on 127.0.0.1 from a thread. No network, no build tool.

    with serve(tmp) as url:        # url = "http://127.0.0.1:PORT/simple/"
        publish(tmp, make_wheel(tmp / "files", "aifprobe", "1.0", {...}))
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name


def metadata(name: str, version: str, *, summary: str = "", licence: str = "MIT") -> str:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: {summary or f'{name}, made by a test'}\nLicense: {licence}\n"
    )


def make_wheel(
    directory: Path, name: str, version: str, files: Mapping[str, str], **meta: Any
) -> Path:
    """A pure-Python wheel holding `files` (path in site-packages → text)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    content = {
        **files,
        f"{dist_info}/METADATA": metadata(name, version, **meta),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},{_digest(text.encode())},{len(text.encode())}" for path, text in content.items()
    ]
    record.append(f"{dist_info}/RECORD,,")
    content[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in content.items():
            archive.writestr(path, text)
    return wheel


def make_sdist(directory: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    """A source distribution holding `files` (pyproject.toml, its build backend…) and PKG-INFO."""
    directory.mkdir(parents=True, exist_ok=True)
    top = f"{name}-{version}"
    sdist = directory / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for path, text in {**files, "PKG-INFO": metadata(name, version)}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return sdist


def publish(root: Path, *distributions: Path) -> None:
    """Add `distributions` (under `root`) to the simple index `root/simple/`."""
    simple = root / "simple"
    for dist in distributions:
        project = simple / canonicalize_name(dist.name.split("-")[0])
        project.mkdir(parents=True, exist_ok=True)
        link = (
            f"../../{dist.relative_to(root)}#sha256={hashlib.sha256(dist.read_bytes()).hexdigest()}"
        )
        with open(project / "links", "a") as links:
            links.write(f'<a href="{html.escape(link)}">{html.escape(dist.name)}</a><br>\n')
        (project / "index.html").write_text(_page((project / "links").read_text()))
    projects = sorted(p.name for p in simple.iterdir() if p.is_dir())
    anchors = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in projects)
    (simple / "index.html").write_text(_page(anchors))


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """`root` over HTTP on 127.0.0.1; the simple index's URL."""
    handler = partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _page(body: str) -> str:
    return f"<!DOCTYPE html>\n<html><body>\n{body}</body></html>\n"


def _digest(data: bytes) -> str:
    encoded = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={encoded}"
