"""Container HEALTHCHECK: ``GET /healthz`` on the port the process itself listens on.

Which process runs is read from PID 1's command line (``python -m
crm_shared.runner <name>``) unless a name is given as the argument. The port
comes from the process's own ``config.yaml`` with the container's environment,
exactly as the process resolves it: a service's ``<SVC>_METRICS_PORT``, the
gateway's ``GATEWAY_PORT``. Exit 0 when healthy, 1 otherwise (Docker's contract).
"""
from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

APP = Path(__file__).resolve().parents[2]


def process_name(argv: list[str], cmdline: Path = Path("/proc/1/cmdline")) -> str:
    if argv:
        return argv[0]
    args = cmdline.read_bytes().decode(errors="replace").split("\0")
    for i, arg in enumerate(args[:-1]):
        if arg.endswith("crm_shared.runner") and args[i + 1]:
            return args[i + 1]
    raise SystemExit("healthcheck: PID 1 is not `python -m crm_shared.runner <name>`; pass the name")


def health_url(name: str) -> str:
    sys.path.insert(0, str(APP))
    from crm_shared.config import load_yaml

    folder = APP / ("gateway" if name == "gateway" else f"services/{name}")
    config = load_yaml(folder / "config.yaml", os.environ)
    if name == "gateway":
        port = int(str(config["WEB_SERVER_ADDRESS"]).rsplit(":", 1)[1])
    else:
        port = int(config["METRICS_PORT"])
    return f"http://127.0.0.1:{port}/healthz"


def main(argv: list[str]) -> int:
    try:
        url = health_url(process_name(argv))
        with urllib.request.urlopen(url, timeout=4) as resp:  # noqa: S310 - fixed http://127.0.0.1 URL
            return 0 if resp.status == 200 else 1
    except Exception as exc:  # any failure means unhealthy
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
