# newsbot's image: the bot installed from the lock file, run as an unprivileged user.
# Build: docker build -t newsbot .   Run one process: see compose.yaml, or
#   docker run --rm -e DISCORD_TOKEN -v newsbot-data:/app/data -v "$PWD/seeds:/app/seeds:ro" newsbot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependencies first, at the versions the lock pins, so that a change to the code alone
# reuses this layer.
COPY pyproject.toml requirements.lock.txt README.md ./
COPY bot ./bot
RUN pip install -c requirements.lock.txt . \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent newsbot \
    && mkdir -p /app/data \
    && chown newsbot /app/data

# config/newsbot.yaml finds the seeds in /app/seeds and the SQLite database in /app/data.
COPY config ./config
COPY seeds ./seeds

# /healthz, /readyz and /metrics (README: Health and metrics), on every interface of the
# container: publish the port only where Prometheus or the orchestrator can reach it.
ENV NEWSBOT_METRICS_LISTEN=0.0.0.0:9108
EXPOSE 9108
# Alive while the bot's event loop answers; Python's urllib, since slim images have no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]

# The newsbot user by its uid: a runtime can verify that a number is not root (runAsNonRoot).
USER 10001
# The database, and the seed folder (mount your own over the shipped examples, read-only unless
# `newsbot seeds import` writes into it from this container).
VOLUME ["/app/data", "/app/seeds"]
ENTRYPOINT ["newsbot"]
CMD ["run"]
