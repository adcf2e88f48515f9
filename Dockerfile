# One image for the bot and the worker: the command chooses.
#   docker run … deploy-monitor bot      (HTTP on $PORT, or Socket Mode with SLACK_APP_TOKEN)
#   docker run … deploy-monitor worker
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY workers ./workers
COPY simulators ./simulators
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3000
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 deploy-monitor
USER 10001
WORKDIR /home/deploy-monitor
EXPOSE 3000
# No HEALTHCHECK: the worker serves no HTTP. Probe the bot's GET /healthz from the orchestrator.
ENTRYPOINT ["deploy-monitor"]
CMD ["bot"]
