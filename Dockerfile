# One image for the bot and the worker: the command chooses.
#   docker run … deploy-monitor bot      (HTTP on $PORT, or Socket Mode with SLACK_APP_TOKEN)
#   docker run … deploy-monitor worker
# compose.yaml runs the whole stack from it. Build: docker build -t deploy-monitor .

# -- build: the locked dependencies (exact versions, hashes checked, wheels only: no compiler),
#    then the package itself without resolving anything again
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY workers ./workers
COPY simulators ./simulators
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel

# -- run: the same slim Python, the virtualenv, a non-root user; no build tools, no source tree
FROM python:3.11-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="deploy-monitor" \
      org.opencontainers.image.description="Follow one commit through a chain of Concourse pipelines to staging, and tell the team in Slack." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3000
COPY --from=build /opt/venv /opt/venv
COPY ops/healthcheck.py /usr/local/lib/deploy-monitor/healthcheck.py
RUN useradd --create-home --uid 10001 --user-group deploy-monitor
USER 10001:10001
WORKDIR /home/deploy-monitor
EXPOSE 3000
# The bot: GET /healthz (200 while Redis answers); a worker: its metrics port when it has one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/deploy-monitor/healthcheck.py"]
ENTRYPOINT ["deploy-monitor"]
CMD ["bot"]
