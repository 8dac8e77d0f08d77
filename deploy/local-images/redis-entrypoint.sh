#!/bin/sh
# As the official image: a `redis-server` command answers other containers.
if [ "$1" = "redis-server" ]; then
  set -- "$@" --protected-mode no
fi
exec "$@"
