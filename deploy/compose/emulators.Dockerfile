# The Salesforce and Gainsight emulators for the local trial in deploy/docker-compose.yml.
# Never for production: the production image (../../Dockerfile) leaves the emulators out.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=84.2.1
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /src
RUN python -m venv /opt/teamsync \
 && /opt/teamsync/bin/pip install --no-cache-dir \
      "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}"
COPY pyproject.toml requirements.lock README.md ./
COPY config ./config
COPY connectors ./connectors
COPY mappings ./mappings
COPY sync ./sync
COPY emulators ./emulators
RUN /opt/teamsync/bin/pip install --no-cache-dir --no-build-isolation \
      -c requirements.lock ".[emulators]" \
 && groupadd --system --gid 10001 teamsync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin teamsync \
 && mkdir -p /tls \
 && chown 10001:10001 /tls
ENV PATH=/opt/teamsync/bin:$PATH
USER 10001:10001
WORKDIR /tls
# Listens on 127.0.0.1 only: the teamsync container shares this container's network namespace
# (network_mode: "service:emulators"), so the certificate for 127.0.0.1 is valid for it.
ENTRYPOINT ["teamsync", "emulate"]
CMD ["--accounts", "300", "--sf-port", "8443", "--gs-port", "8444", "--tls-dir", "/tls"]
