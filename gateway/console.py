"""The web console's built files (``console/dist``, made by ``npm run build``) served at
``/``. They are read once at start, gzipped once, and answered without a worker:

- ``index.html`` is revalidated on every load (``no-cache`` + ETag), so a new build is
  picked up at once; the hashed files under ``/assets/`` are immutable for a year;
  the rest of ``public/`` (logos, icon) for an hour.
- Every answer carries a strict Content-Security-Policy: scripts, styles, images and
  connections from this origin only, no inline code, no framing.
- Without a build the console's paths answer 404 with how to make one; the API is
  unaffected. These routes are not part of the API, so not in the OpenAPI document;
  they are counted in ``crm_http_requests_total`` by route and status like the API's."""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from logging import getLogger
from pathlib import Path
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request, Response

from crm_shared.config import settings_of
from crm_shared.layout import ROOT
from gateway.entrypoints import _requests_total
from gateway.exceptions import json_response
from gateway.server import ApiWebServer
from gateway.settings import Settings

log = getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
    "font-src 'self'", "connect-src 'self'", "manifest-src 'self'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
HOUR = "public, max-age=3600"
COMPRESSIBLE = {"text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml",
                "application/json"}


@dataclass(frozen=True)
class ConsoleFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str
    cache_control: str


def load_files(root: Path) -> dict[str, ConsoleFile]:
    """Every file of the build, keyed by its URL path ("/" for index.html)."""
    files: dict[str, ConsoleFile] = {}
    if not (root / "index.html").is_file():
        return files
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        body = path.read_bytes()
        kind = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        if kind == "application/javascript":
            kind = "text/javascript"
        content_type = f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("+xml") else kind
        gzipped = gzip.compress(body, 9, mtime=0) if kind in COMPRESSIBLE and len(body) > 512 else None
        cache = REVALIDATE if rel == "index.html" else IMMUTABLE if rel.startswith("assets/") else HOUR
        etag = hashlib.sha256(body).hexdigest()[:32]
        files["/" if rel == "index.html" else f"/{rel}"] = ConsoleFile(body, gzipped, content_type, etag, cache)
    return files


class ConsoleEndpoint(HttpRequestHandler):
    """GET of one of the console's paths; answered from memory, no worker spawned."""

    server = ApiWebServer()  # the API's own server (one shared listener)
    _files: dict[str, dict[str, ConsoleFile]] = {}

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__("GET", url, **kwargs)

    def setup(self) -> None:
        super().setup()
        settings = settings_of(self.container.config, Settings)
        root = Path(settings.CONSOLE_DIR) if settings.CONSOLE_DIR else ROOT / "console" / "dist"
        key = str(root)
        if key not in self._files:  # the same build for every console route of the process
            self._files[key] = load_files(root)
            if self._files[key]:
                log.info("console: serving %d files from %s", len(self._files[key]), root)
            else:
                log.warning("console: no build in %s (make console); the API is served without it", root)
        self.files = self._files[key]

    def handle_request(self, request: Request) -> Response:
        name = request.path
        found = self.files.get(name)
        if found is None:
            missing = "the console is not built here: run `make console`" if not self.files else "no such file"
            response = json_response({"error": {"code": "not_found", "message": missing}}, 404)
        elif request.if_none_match.contains(found.etag):
            response = Response(status=304)
            response.set_etag(found.etag)
            response.headers["Cache-Control"] = found.cache_control
        else:
            accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
            use_gzip = accepts_gzip and found.gzipped is not None
            response = Response(found.gzipped if use_gzip else found.body, status=200, content_type=found.content_type)
            if use_gzip:
                response.headers["Content-Encoding"] = "gzip"
            if found.gzipped is not None:
                response.headers["Vary"] = "Accept-Encoding"
            response.set_etag(found.etag)
            response.headers["Cache-Control"] = found.cache_control
        response.headers.update(SECURITY_HEADERS)
        # counted with the API's requests, so the gateway's dashboards and alerts see these too
        _requests_total().labels("GET", self.url, str(response.status_code)).inc()
        return response


console_file = ConsoleEndpoint.decorator


class ConsoleRoutes:
    """The console's paths; everything it asks of the server goes through /api/v1."""

    @console_file("/")
    def console_index(self) -> None: ...

    @console_file("/favicon.svg")
    def console_icon(self) -> None: ...

    @console_file("/assets/<path:name>")
    def console_assets(self, name: str) -> None: ...

    @console_file("/logos/<path:name>")
    def console_logos(self, name: str) -> None: ...
