# syntax=docker/dockerfile:1
# One image for the whole suite; the process is chosen by the command:
#   docker run IMAGE auth|users|crm|telephony|mail|onec|gateway
# (ENTRYPOINT is `python -m crm_shared.runner`; run migrations alone with
#  `--entrypoint python IMAGE -m crm_shared.migrations <service>`).
# Why one image: every process shares crm_shared and one pinned dependency set
# (requirements.lock), so one build, one vulnerability scan and one tag to promote.
# See docs/operations.md.

# Exact tag; for production builds pin the digest too:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# The web console is built with Node (its files only reach the image; Node does not).
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# -------------------------------------------------------------- console stage
FROM ${NODE_IMAGE} AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/index.html console/tsconfig.json console/vite.config.ts ./
COPY console/src/ ./src/
COPY console/public/ ./public/
RUN npm run build

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.in requirements.lock ./
# The runtime dependencies (requirements.in) at exactly the versions pinned in
# requirements.lock (used as constraints), without the lock's dev tools
# (pytest, ruff, mypy). Every dependency is a manylinux wheel or pure Python
# (psycogreen is an sdist), so no compiler is needed; if one ever is, install
# it in THIS stage only: the runtime stage copies just /opt/venv and /app.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.in -c requirements.lock \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y pip
COPY contracts/ /app/contracts/
COPY crm_shared/ /app/crm_shared/
COPY services/ /app/services/
COPY gateway/ /app/gateway/
COPY deploy/docker/healthcheck.py /app/deploy/docker/healthcheck.py
# the gateway serves these at / (gateway/console.py)
COPY --from=console /console/dist/ /app/console/dist/
# Bytecode is compiled here because the runtime root filesystem is read-only.
RUN python -m compileall -q /app

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="crm-platform" \
      org.opencontainers.image.description="Multi-tenant CRM backend: nameko services and the HTTP gateway (one image, command = process name)"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 crm \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin crm
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# gateway API, gateway metrics, then the services' metrics/probe ports (auth..onec)
EXPOSE 8000 9100 9101 9102 9103 9104 9105 9106
# GET /healthz on the process's own port (services: <SVC>_METRICS_PORT; gateway:
# GATEWAY_PORT). The start period covers migrations, which run before the server starts.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/deploy/docker/healthcheck.py"]
ENTRYPOINT ["python", "-m", "crm_shared.runner"]
