# Evidence Collector daemon: `collector run` as a non-root user, state in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 collector \
 && useradd --system --uid 10001 --gid collector --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin collector

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the code, installed without touching the dependency layer (README.md is the
# distribution's long description, which the build needs).
COPY README.md ./
COPY collector ./collector
COPY connectors ./connectors
COPY schedules ./schedules
COPY storage ./storage
COPY sandbox ./sandbox
RUN pip install --no-cache-dir --no-deps . \
 && rm -rf /src/build \
 && mkdir -p /data \
 && chown collector:collector /data

# The store, keys, digests and snapshots live in /data; the config is /data/config.toml.
# Secrets come only from the environment at run time (see compose.yaml and docs/operations.md).
ENV COLLECTOR_CONFIG=/data/config.toml \
    COLLECTOR_LISTEN=0.0.0.0:9108
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 9108

# No curl in the slim image: the interpreter asks /healthz (a 503 raises, so the check fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('COLLECTOR_LISTEN', ':9108').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

ENTRYPOINT ["collector"]
CMD ["run"]
