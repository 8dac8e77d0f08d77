#!/usr/bin/env bash
# Builds local stand-ins for the images docker-compose.yml and the Dockerfile start from, for a
# machine that reaches Debian's mirror but no image registry (an offline site, a CI box):
#
#   deploy/local-images/build.sh        # needs root (debootstrap), a Docker engine, ~600 MB
#   export PYTHON_IMAGE=assistants-local/python:3.11 REDIS_IMAGE=assistants-local/redis:7 \
#          POSTGRES_IMAGE=assistants-local/postgres:15
#   docker compose up -d --build
#
# A Debian bookworm root made by debootstrap is imported as assistants-local/debian:bookworm;
# the others are built on it from Debian's packages (Python 3.11, Redis 7.0, PostgreSQL 15).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if ! docker image inspect assistants-local/debian:bookworm >/dev/null 2>&1; then
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  tar -C "$root" -c . | docker import - assistants-local/debian:bookworm >/dev/null
fi
# The image trusts the CAs this machine trusts (behind a TLS-inspecting proxy, pip needs them).
cp "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$here/site-ca.crt"
docker build -q -t assistants-local/python:3.11 -f "$here/python.Dockerfile" "$here"
docker build -q -t assistants-local/redis:7 -f "$here/redis.Dockerfile" "$here"
docker build -q -t assistants-local/postgres:15 -f "$here/postgres.Dockerfile" "$here"
rm -f "$here/site-ca.crt"
