#!/bin/sh
# The test command: installs what the tests need on Debian bookworm, then runs ruff,
# lint-imports and pytest.
#   sh tests/run.sh [pytest args...]
# Skips apt when every needed binary is present; uses sudo only when not root.
set -eu
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

need_apt=no
for bin in sipp baresip mosquitto mosquitto_pub espeak-ng sox chromium kamailio promtool ip systemd-analyze openssl; do
    command -v "$bin" >/dev/null 2>&1 || need_apt=yes
done
if [ "$need_apt" = yes ]; then
    say "installing system packages (sip-tester baresip-core mosquitto espeak-ng sox chromium kamailio prometheus iproute2 systemd openssl)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
        sip-tester baresip-core mosquitto mosquitto-clients espeak-ng sox libsox-fmt-all \
        chromium kamailio prometheus iproute2 systemd openssl
else
    say "system packages already present (sipp, baresip, mosquitto, espeak-ng, sox, chromium, kamailio, promtool, ip, systemd-analyze, openssl)"
fi

# SIPp with TLS beside Debian's sipp (which has none). Failing here fails only the tests
# that need it, with "not installed" (they never skip unless CALLCENTER_ALLOW_SKIP=1).
sh tests/install_sipp_tls.sh || say "WARNING: no SIPp with TLS: the SIPp-over-TLS tests will fail"

sh install.sh test    # .venv (with python3-venv from apt on Debian's own python3)
PY=.venv/bin/python

say "ruff check ."
"$PY" -m ruff check .

say "lint-imports (the layer rules in pyproject.toml)"
.venv/bin/lint-imports

say "mypy (strict on callcenter/, ivr/, acd/)"
"$PY" -m mypy

# Two workers (CI has two cores); a file's tests stay on one worker (module fixtures, order).
# PYTEST_WORKERS=0 runs serially.
WORKERS="${PYTEST_WORKERS:-2}"
say "pytest -n $WORKERS $*"
# Python 3.11 formats every traceback with ast.parse (the ^^^ under the failing expression),
# and its AST converter keeps one recursion counter for all threads: a helper thread printing
# a traceback while pytest parses a test's source in the main thread can fail the whole run
# with "SystemError: AST constructor recursion depth mismatch" (seen here). Without position
# tables no traceback needs ast.parse; pytest's own reports are unchanged.
export PYTHONNODEBUGRANGES=1
exec "$PY" -m pytest -q -n "$WORKERS" --dist loadfile "$@"
