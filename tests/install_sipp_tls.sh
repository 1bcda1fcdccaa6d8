#!/bin/sh
# SIPp with TLS (`-t l1`) for the TLS tests and benchmarks, beside Debian's own `sipp`.
#   sh tests/install_sipp_tls.sh [DEST]        (DEST: /usr/local/lib/callcenter-sipp)
# Leaves DEST/sipp-tls. Does nothing when that (or the `sipp` on PATH) already has TLS.
#
# Debian 12's sip-tester is built without TLS, and its source is not to be had from the
# package archive here. Debian 13's (3.7.3) is built with wolfSSL, and its TLS client never
# sends a request after the handshake. Debian unstable's 3.8.0 is built with OpenSSL and works,
# but needs a newer C library: its package and the libraries it needs are downloaded with apt
# (a private package list of testing and unstable: signed indexes, hashes checked; the
# system's apt setup is not touched), unpacked into DEST/root without installing anything,
# and run through that tree's own dynamic loader. Other libraries come from the system.
# When unstable drops VERSION, its current sip-tester is taken if it has TLS (then update
# VERSION and SHA256_AMD64 to it).
set -eu

DEST=${1:-/usr/local/lib/callcenter-sipp}
SUITES="testing unstable"
VERSION=1:3.8.0-1
SHA256_AMD64=8000b1094707cdf36de9f7f77db52594d61807dca740355526770d35701af2a2
LIBS="libc6 libgcc-s1 libstdc++6 libgsl28 libgslcblas0 libncursesw6 libtinfo6 libpcap0.8t64
      libsctp1 libssl3t64 libpugixml1v5"

has_tls() { "$1" -v 2>/dev/null | grep -q -- '-TLS'; }

if [ -x "$DEST/sipp-tls" ] && has_tls "$DEST/sipp-tls"; then
    echo "sipp with TLS present: $DEST/sipp-tls"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if command -v sipp >/dev/null 2>&1 && has_tls "$(command -v sipp)"; then
    $SUDO mkdir -p "$DEST"
    $SUDO ln -sf "$(command -v sipp)" "$DEST/sipp-tls"
    echo "sipp on PATH has TLS: linked as $DEST/sipp-tls"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
cat >"$work/parts/new.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITES
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_private() {
    apt-get -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts" \
        -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" \
        -o APT::Sandbox::User="$(id -un)" "$@"
}
apt_private update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
# shellcheck disable=SC2086  # LIBS is a list of package names
if (cd "$work/debs" && apt_private download "sip-tester=$VERSION" $LIBS); then
    deb=$(ls "$work"/debs/sip-tester_*.deb)
    if [ "$(dpkg --print-architecture)" = amd64 ]; then
        echo "$SHA256_AMD64  $deb" | sha256sum -c --quiet -
    fi
else
    # VERSION has left the archive: take the suites' current package (apt checks it against
    # the signed index); it must still report TLS below, or nothing is installed.
    echo "sip-tester $VERSION is gone from $SUITES: trying the current one" >&2
    rm -f "$work"/debs/*.deb
    # shellcheck disable=SC2086
    (cd "$work/debs" && apt_private download sip-tester $LIBS)
fi
$SUDO rm -rf "$DEST/root.new"
$SUDO mkdir -p "$DEST/root.new"
for d in "$work"/debs/*.deb; do $SUDO dpkg-deb -x "$d" "$DEST/root.new"; done
$SUDO rm -rf "$DEST/root"
$SUDO mv "$DEST/root.new" "$DEST/root"
$SUDO tee "$DEST/sipp-tls" >/dev/null <<'EOF'
#!/bin/sh
# SIPp with TLS, run with the libraries unpacked beside it (tests/install_sipp_tls.sh).
root="$(dirname "$(readlink -f "$0")")/root"
lib=$(echo "$root"/usr/lib/*-linux-gnu)
exec "$(echo "$lib"/ld-linux*.so.*)" --library-path "$lib" "$root/usr/bin/sipp" "$@"
EOF
$SUDO chmod 755 "$DEST/sipp-tls"
has_tls "$DEST/sipp-tls"
echo "installed $DEST/sipp-tls: $("$DEST/sipp-tls" -v 2>&1 | grep -m1 SIPp)"
