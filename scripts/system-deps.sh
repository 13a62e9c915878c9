#!/usr/bin/env bash
# The Debian packages secpath's tests use: strongSwan (interop), tshark
# (independent decoding), nftables/iproute2 (the daemon, NAT), iperf3 (the
# daemon benchmark), MIT Kerberos (the KDC and the gssapi build).
# As root: installs what is missing (apt-get update only when needed).
# Otherwise: says what is missing; the tests that need it are skipped
# (never in CI, which runs as root).
set -euo pipefail
PACKAGES=(
    python3-venv make gcc python3-dev iproute2 nftables iputils-ping tshark
    strongswan-swanctl charon-systemd libcharon-extra-plugins
    libstrongswan-standard-plugins libstrongswan-extra-plugins iperf3
    libkrb5-dev krb5-kdc krb5-admin-server krb5-user
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: not root (or no apt-get): missing Debian packages ${missing[*]};" \
         "the tests that need them are skipped" >&2
    exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
