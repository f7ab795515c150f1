#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ are running locally; starts them when
# they are installed but stopped, installs them with apt when missing and we
# are root. Creates the 'crm' database role and enables RabbitMQ's management
# plugin (the tests create a fresh vhost through its HTTP API).
# Skipped for a remote server: set PG_HOST / AMQP_HOST to something not local.
# Env: PG_HOST=127.0.0.1 PG_PORT=5432 PG_VERSION (auto) CRM_DB_USER=crm CRM_DB_PASSWORD=crm
#      AMQP_HOST=127.0.0.1 AMQP_PORT=5672 ALLOW_APT_INSTALL=1
set -euo pipefail
PG_HOST=${PG_HOST:-127.0.0.1}; PG_PORT=${PG_PORT:-5432}
DBUSER=${CRM_DB_USER:-crm}; DBPASS=${CRM_DB_PASSWORD:-crm}
AMQP_HOST=${AMQP_HOST:-127.0.0.1}; AMQP_PORT=${AMQP_PORT:-5672}
is_local() { case "$1" in 127.*|localhost|::1) return 0;; *) return 1;; esac; }
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "${ALLOW_APT_INSTALL:-1}" = 1 ]; }
apt_install() {
  if ! can_apt; then return 1; fi
  [ -n "$(find /var/lib/apt/lists -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ] || apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}
fail() { echo "ensure-infra: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------- PostgreSQL ----------------
if is_local "$PG_HOST"; then
  if ! command -v pg_isready >/dev/null; then
    apt_install postgresql || fail "PostgreSQL is not installed. Install it (Debian/Ubuntu: sudo apt-get install postgresql) or point CRM_*_DATABASE_URL at a server."
  fi
  if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
    echo "PostgreSQL is not running on $PG_PORT; starting it"
    PGV=${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)}
    [ -n "$PGV" ] || { apt_install postgresql && PGV=$(ls /etc/postgresql | sort -V | tail -n 1); } \
      || fail "no PostgreSQL cluster found; create one with pg_createcluster"
    pg_ctlcluster --skip-systemctl-redirect "$PGV" main start 2>/dev/null || pg_ctlcluster "$PGV" main start || true
    for _ in $(seq 1 120); do pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break; sleep 0.5; done
    pg_isready -h "$PG_HOST" -p "$PG_PORT" -q || fail "PostgreSQL did not start; see /var/log/postgresql"
  fi
  # admin access: trust on 127.0.0.1, or peer auth as the postgres OS user
  if psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -tAc 'select 1' >/dev/null 2>&1; then
    admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -v ON_ERROR_STOP=1 -tA "$@"; }
  elif [ "$(id -u)" = 0 ] && command -v runuser >/dev/null; then
    admin() { runuser -u postgres -- psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -tA "$@"; }
  else
    admin() { sudo -n -u postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -tA "$@"; }
  fi
  if ! PGPASSWORD=$DBPASS psql -h "$PG_HOST" -p "$PG_PORT" -U "$DBUSER" -d postgres -w -tAc 'select 1' >/dev/null 2>&1; then
    admin -c "SELECT 1 FROM pg_roles WHERE rolname='$DBUSER'" | grep -q 1 \
      && admin -c "ALTER ROLE $DBUSER LOGIN CREATEDB PASSWORD '$DBPASS'" >/dev/null \
      || admin -c "CREATE ROLE $DBUSER LOGIN CREATEDB PASSWORD '$DBPASS'" >/dev/null \
      || fail "cannot create the PostgreSQL role '$DBUSER'; create it: CREATE ROLE $DBUSER LOGIN CREATEDB PASSWORD '$DBPASS'"
  fi
  echo "postgres ok on $PG_HOST:$PG_PORT (role $DBUSER)"
fi

# ---------------- RabbitMQ ----------------
if is_local "$AMQP_HOST"; then
  if ! command -v rabbitmq-diagnostics >/dev/null && ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
    apt_install rabbitmq-server || fail "RabbitMQ is not installed. Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server) or set AMQP_URI."
  fi
  if command -v rabbitmq-diagnostics >/dev/null; then
    if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1 && ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
      echo "RabbitMQ is not running; starting it"
      if [ -x /etc/init.d/rabbitmq-server ]; then /etc/init.d/rabbitmq-server start || true; else rabbitmq-server -detached; fi
    fi
    for _ in $(seq 1 120); do
      rabbitmqctl -q await_startup --timeout 60 >/dev/null 2>&1 && break; port_open "$AMQP_HOST" "$AMQP_PORT" && break; sleep 1
    done
    if ! port_open "$AMQP_HOST" 15672; then
      rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || echo "warning: could not enable rabbitmq_management (tests need it)"
      for _ in $(seq 1 60); do port_open "$AMQP_HOST" 15672 && break; sleep 0.5; done
    fi
  fi
  port_open "$AMQP_HOST" "$AMQP_PORT" || fail "RabbitMQ is not answering on $AMQP_HOST:$AMQP_PORT"
  echo "rabbitmq ok on $AMQP_HOST:$AMQP_PORT"
fi
