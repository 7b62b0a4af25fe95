# teamsync as a container: `teamsync run` for a cron job (Kubernetes CronJob with
# concurrencyPolicy: Forbid), or `teamsync daemon` for the built-in scheduler.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY config ./config
COPY connectors ./connectors
COPY mappings ./mappings
COPY sync ./sync
COPY emulators ./emulators
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir -c requirements.lock --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 teamsync
COPY --from=build /wheels /wheels
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --no-index --find-links /wheels -c /tmp/requirements.lock 'teamsync[postgres]' \
 && rm -rf /wheels /tmp/requirements.lock
USER teamsync
WORKDIR /home/teamsync
# JSON logs on stderr (not a terminal); state in PostgreSQL in production:
#   TEAMSYNC_DATABASE_URL=postgresql+psycopg://user@host/db
ENV TEAMSYNC_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["teamsync"]
CMD ["run"]
