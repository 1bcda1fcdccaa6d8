#!/bin/sh
# Makes the virtualenv .venv and installs the project into it, editable:
#   sh install.sh [EXTRAS]        (sh install.sh test: with the test tools)
# Debian's own python3 (PEP 668: no pip install outside a venv) makes no venv until the
# python3-venv package is installed: when `python3 -m venv` fails, this installs that package
# (apt-get, with sudo when not root) and tries again.
set -eu
cd "$(dirname "$0")"

if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "==> creating virtualenv .venv"
    if ! python3 -m venv .venv; then
        echo "==> python3 -m venv failed: installing python3-venv"
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3-venv
        python3 -m venv .venv
    fi
fi
echo "==> installing the project into .venv (pip install -e '.${1:+[$1]}')"
.venv/bin/python -m pip install --quiet -e ".${1:+[$1]}"
