# teamsync production image: `teamsync run` for a cron job (Kubernetes CronJob, see deploy/), or
# `teamsync daemon` for the built-in scheduler.  Build: docker build -t teamsync .
#
# - runs as the numeric user 10001:10001 (pods with runAsNonRoot accept it);
# - the default store is /var/lib/teamsync/teamsync.db, a VOLUME owned by that user; a run
#   refuses (exit 2) when nothing is mounted there and TEAMSYNC_DATABASE_URL is not set;
# - the emulators and trustme are not in it (they are the `emulators` extra, for demo/tests);
# - build tools are pinned (below) and every dependency is pinned by requirements.lock.
#
# For byte-for-byte reproducible builds pin the base image by digest as well, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=84.2.1
ARG WHEEL_VERSION=0.48.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/teamsync \
 && /opt/teamsync/bin/pip install --no-cache-dir \
      "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}" "wheel==${WHEEL_VERSION}"
COPY pyproject.toml requirements.lock README.md ./
# Only what the production commands need: no emulators/, tests/ or benchmarks/.
COPY config ./config
COPY connectors ./connectors
COPY mappings ./mappings
COPY sync ./sync
RUN /opt/teamsync/bin/pip install --no-cache-dir --no-build-isolation \
      -c requirements.lock ".[postgres]" \
 && /opt/teamsync/bin/pip uninstall --yes setuptools wheel \
 && /opt/teamsync/bin/python -c "import importlib.util as u, sys; sys.exit(bool(u.find_spec('emulators') or u.find_spec('trustme')))"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 teamsync \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/teamsync \
      --no-create-home --shell /usr/sbin/nologin teamsync \
 && mkdir -p /var/lib/teamsync \
 && chown 10001:10001 /var/lib/teamsync \
 && chmod 0750 /var/lib/teamsync
COPY --from=build /opt/teamsync /opt/teamsync
# JSON logs on stderr; the data directory holds the default SQLite store (in production point
# TEAMSYNC_DATABASE_URL, or TEAMSYNC_DATABASE_URL_FILE, at PostgreSQL instead).
ENV PATH=/opt/teamsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TEAMSYNC_LOG_FORMAT=json \
    TEAMSYNC_DATA_DIR=/var/lib/teamsync \
    TEAMSYNC_METRICS_HOST=0.0.0.0
VOLUME ["/var/lib/teamsync"]
WORKDIR /var/lib/teamsync
USER 10001:10001
# /metrics, /healthz and /readyz of `teamsync daemon` (TEAMSYNC_METRICS_PORT).
EXPOSE 9810
ENTRYPOINT ["teamsync"]
CMD ["run"]
