#!/bin/sh
# First start: put a container-ready config into the /config volume, then hand over to aniworldd
# (exec, so tini's SIGTERM reaches the daemon directly).
set -eu
config="${ANIWORLDD_CONFIG:-/config/config.yaml}"
if [ ! -e "$config" ]; then
    cp /usr/share/aniworldd/config.yaml "$config"
    cp /usr/share/aniworldd/config.example.yaml "$(dirname "$config")/config.example.yaml" 2>/dev/null || true
    echo "aniworldd: wrote a default config to $config" >&2
fi
exec aniworldd "$@"
