#!/usr/bin/env bash
# Install the Debian packages the benchmark uses when they are missing: wrk (required),
# hyperfine and pypy3 (optional). Never fails: what cannot be installed is reported, and the
# runner reports the affected measurements as unavailable.
set -u

apt_updated=0

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

install_package() {  # install_package COMMAND PACKAGE
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench: '$1' is missing and apt-get is not available: install '$2' by hand." >&2
        return 1
    fi
    echo "bench: installing $2 with apt-get..."
    if [ "$apt_updated" = 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
        apt_updated=1
    fi
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1
    then
        echo "bench: could not install '$2' (apt-get failed or no root/sudo)." >&2
        return 1
    fi
}

for spec in "$@"; do
    install_package "${spec%%:*}" "${spec##*:}" || true
done
exit 0
