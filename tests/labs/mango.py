"""A local stand-in for the Mango Office VPBX API (the real PBX is not
reachable here), following its documented behaviour: every request is a form
of ``vpbx_api_key``, ``sign`` and ``json`` with ``sign =
sha256_hex(api_key + json + api_salt)``; ``commands/callback`` answers
``{"result": 1000}`` when the key and signature are right, 3102 for a wrong
signature and 3101 for an unknown key. It keeps every command it took, and
signs webhooks as the PBX would, for the tests to post to the gateway."""
from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def sign(api_key: str, payload: str, api_salt: str) -> str:
    return hashlib.sha256((api_key + payload + api_salt).encode()).hexdigest()


class MangoStandIn:
    def __init__(self, api_key: str, api_salt: str) -> None:
        self.api_key, self.api_salt = api_key, api_salt
        self.commands: list[dict[str, Any]] = []
        self.refused: list[int] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
                result = stand_in.take(self.path, form)
                body = json.dumps({"result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/vpbx/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self, path: str, form: dict[str, str]) -> int:
        if form.get("vpbx_api_key") != self.api_key:
            self.refused.append(3101)
            return 3101
        if form.get("sign") != sign(self.api_key, form.get("json", ""), self.api_salt):
            self.refused.append(3102)
            return 3102
        if path.rstrip("/").endswith("/commands/callback"):
            self.commands.append(json.loads(form["json"]))
            return 1000
        return 3100

    def webhook(self, data: dict[str, Any], salt: str | None = None) -> str:
        """A webhook's form body as the PBX sends it (``salt`` to sign it wrongly)."""
        payload = json.dumps(data, ensure_ascii=False)
        return urllib.parse.urlencode({"vpbx_api_key": self.api_key, "json": payload,
                                       "sign": sign(self.api_key, payload, salt or self.api_salt)})

    @staticmethod
    def now() -> int:
        return int(time.time())

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
