#!/bin/sh
# deploy.sh - the deployment check: render.yaml, Procfile, Dockerfile and
# deploy/lode.service, validated and started here as far as this machine
# allows (no Docker engine, Render or systemd manager needed); see
# tests/deploy.py.  Uses Debian's python3 with python3-yaml and
# systemd-analyze (scripts/deps.sh).  Run by `make test`.
set -u
cd "$(dirname "$0")/.."
exec /usr/bin/python3 tests/deploy.py "$@"
