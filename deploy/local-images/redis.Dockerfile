# A stand-in for redis:7: Debian bookworm's Redis 7.0. Like the official image, it answers
# other containers (protected mode off): the compose network is what keeps it private.
ARG DEBIAN_IMAGE=assistants-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER redis
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
