"""nameko's web server, tuned for the API.

- Nagle's algorithm is off: eventlet's WSGI server writes headers and body
  in separate sends; with Nagle on, a keep-alive client's delayed ACK held
  any answer over ~16 KB for about 40 ms (a page of 50 contacts took ~60 ms
  instead of ~13 ms).
- An unknown path is a JSON 404 and a wrong method a JSON 405 (with
  ``Allow``), in the error format of every other answer, not werkzeug's
  HTML pages.
- eventlet's per-request access log is off: it is plain text, not the JSON
  lines every process logs, and cost ~5 % of the gateway's CPU per request;
  ``crm_http_requests_total`` and ``crm_http_request_duration_seconds``
  count every request by route and status instead."""
from __future__ import annotations

import socket
from logging import getLogger
from typing import Any

from eventlet import wsgi
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Request

from gateway.exceptions import json_response


def http_error(exc: HTTPException) -> Any:
    if isinstance(exc, MethodNotAllowed):
        allowed = sorted(exc.valid_methods or [])
        response = json_response({"error": {"code": "method_not_allowed",
                                            "message": f"this path answers {', '.join(allowed)}"}}, 405)
        response.headers["Allow"] = ", ".join(allowed)
        return response
    if isinstance(exc, NotFound):
        return json_response({"error": {"code": "not_found", "message": "no such path"}}, 404)
    status = exc.code or 400
    return json_response({"error": {"code": "bad_request", "message": exc.description or "bad request"}}, status)


class JsonErrorsApp(WsgiApp):
    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values  # type: ignore[attr-defined]
            rv = provider.handle_request(request)
        except HTTPException as exc:
            rv = http_error(exc)
        return rv(environ, start_response)


class ApiWebServer(WebServer):
    def start(self) -> None:
        super().start()
        # accepted connections inherit the option from the listening socket (Linux)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_wsgi_app(self) -> Any:
        return JsonErrorsApp(self)

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, protocol: Any = HttpOnlyProtocol, debug: bool = False) -> Any:
        return wsgi.Server(sock, sock.getsockname(), wsgi_app, protocol=protocol, debug=debug,
                           log=getLogger(__name__), log_output=False)
