# The assistants-server image: the Assistants API on port 8000, running as an unprivileged user,
# with its SQLite database and stored files in the /data volume unless ASSISTANTS_DATABASE_URL
# points elsewhere (docker-compose.yml runs it on PostgreSQL).
#
#   docker build -t assistants-server .
#   docker run -p 8000:8000 -e ASSISTANTS_API_KEYS=sk-choose-one -v assistants-data:/data \
#       assistants-server
#
# tests/test_deploy.py runs this file's CMD and HEALTHCHECK and builds the wheel its pip step
# installs, so keep them in exec (JSON) form. Where no image registry is reachable, build the base
# locally (deploy/local-images/build.sh) and pass --build-arg PYTHON_IMAGE=assistants-local/python:3.11.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ASSISTANTS_DATA_DIR=/data

# An unprivileged user that owns nothing but the data directory.
RUN groupadd --system --gid 10001 assistants \
 && useradd --system --uid 10001 --gid assistants --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin assistants \
 && mkdir /data \
 && chown assistants:assistants /data

WORKDIR /src

# Dependencies first, read from pyproject.toml alone: a change to the code reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install --no-cache-dir --disable-pip-version-check -r requirements.txt \
 && rm requirements.txt

# Then the project itself, without extras. The wheel embeds the Alembic scripts from migrations/
# (src/assistants_server/migrations links there), so `serve` can migrate the database.
COPY README.md ./
COPY migrations/ migrations/
COPY src/ src/
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps . \
 && rm -rf build src/*.egg-info

USER assistants
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

# python:3.11-slim has no curl; the standard library is enough.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import json, urllib.request; response = urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4); raise SystemExit(0 if json.load(response).get('status') == 'ready' else 1)"]

# Migrates the database to the newest schema, then serves. Exec form: the server is PID 1 and
# gets `docker stop`'s SIGTERM, on which it shuts down cleanly.
CMD ["assistants-server", "serve", "--host", "0.0.0.0", "--port", "8000"]
