# A stand-in for python:3.11-slim, for machines that reach Debian's mirror but no image
# registry: Debian bookworm's Python 3.11 in a virtualenv first on PATH, so that `python` and
# `pip` are the image's as they are in the official one. It trusts what the building machine
# trusts (site-ca.crt, copied by build.sh): a site whose proxy inspects TLS has its own CA.
ARG DEBIAN_IMAGE=assistants-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /usr/local/python
COPY site-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/python/bin:$PATH LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
