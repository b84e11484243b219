# Evidence Collector daemon: `collector run` as a non-root user, state in the /data volume.
#
# The base image is pinned by the digest of python:3.11-slim's multi-platform index, so a rebuild
# starts from the same bytes. Refresh it (monthly, for Debian's and CPython's security fixes) with
#   docker buildx imagetools inspect python:3.11-slim    # its "Digest:" line
# and rebuild; tests/schedules/test_container.py checks the form, not the value.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 collector \
 && useradd --system --uid 10001 --gid collector --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin collector

WORKDIR /src

# Dependencies first, exactly as locked: every version pinned and every file's SHA-256 checked
# (setuptools, which builds the package below, included). This layer is rebuilt only when the
# lock changes. After changing pyproject.toml's dependencies, regenerate it with pip-tools:
#   pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
#     --output-file requirements.lock pyproject.toml deploy/build-requirements.in
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

# Then the code, installed without touching the dependency layer (README.md is the
# distribution's long description, which the build needs). The sandbox (local fakes for the
# demo and the tests) stays out of the production image.
COPY pyproject.toml README.md ./
COPY collector ./collector
COPY connectors ./connectors
COPY schedules ./schedules
COPY storage ./storage
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
 && rm -rf /src/build \
 && mkdir -p /data \
 && chown collector:collector /data

# The store, digests and snapshots live in /data; the config is /data/config.toml. The sealing
# key is mounted apart from /data (deploy/*.toml: /run/secrets/seal-ed25519.pem), and the other
# secrets come only from the environment at run time (see README.md and docs/operations.md).
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
