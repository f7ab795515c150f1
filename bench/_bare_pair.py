"""The architecture's ceiling: a bare nameko ``@http`` entrypoint making one
RPC to a service that returns a constant. ``python -m bench._bare_pair
service|gateway`` runs one side (AMQP_URI and BARE_PORT from the environment),
as the suite's processes run, so the two are loaded alike."""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from nameko.rpc import RpcProxy, rpc  # noqa: E402
from nameko.web.handlers import http  # noqa: E402


class BarePing:
    name = "bare_ping"

    @rpc
    def ping(self) -> dict[str, str]:
        return {"status": "ok"}


class BareGateway:
    name = "bare_gateway"

    ping_service: Any = RpcProxy("bare_ping")

    @http("GET", "/ping")
    def ping(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {"Content-Type": "application/json"}, json.dumps(self.ping_service.ping())


def main(side: str) -> None:
    from nameko.cli.run import run

    config = {"AMQP_URI": os.environ["AMQP_URI"], "WEB_SERVER_ADDRESS": f"127.0.0.1:{os.environ['BARE_PORT']}",
              "max_workers": 10}
    run([BarePing if side == "service" else BareGateway], config)


if __name__ == "__main__":
    main(sys.argv[1])
