# The recommendations service: one uvicorn process (`python -m app`) per container.
# Build: docker build -t registry.example.com/recs:<tag> .   (docs/deployment.md)
#
# Both stages use the same Python image: the virtualenv's interpreter is a symlink to
# /usr/local/bin/python3.11, which must exist at the same path at run time. Pin the digest
# as well in CI (python:<tag>@sha256:...). The minor version must match pyproject's
# requires-python, and the uv version the Makefile's UV_VERSION (tests/deploy checks both).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# --- build: the locked runtime dependencies, then the project, into /opt/venv -------------
FROM python:3.11.14-slim-bookworm AS build

COPY --from=uv /uv /usr/local/bin/uv

# Compile bytecode now (the runtime filesystem is read-only), copy files out of uv's cache
# mount instead of hard-linking, use the image's Python and never download one, and keep
# only the runtime dependencies: no dev, loadtest or bench groups (all default groups).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --no-install-project

# Then the project itself, as a regular (non-editable) package: the venv is self-contained.
COPY README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --no-editable

# --- runtime: the venv only; no uv, no compiler, no sources ------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and
# k8s/base/deployment.yaml uses the same ids.
RUN groupadd --system --gid 10001 recs \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin recs

COPY --from=build /opt/venv /opt/venv

# PYTHONSAFEPATH: `python -m` must not put the working directory on sys.path.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONSAFEPATH=1 \
    RECS_HOST=0.0.0.0

# Empty and root-owned (read-only for the app). The embedded backend, if ever used in a
# container, resolves RECS_EMBEDDED_DATA_DIR (default data/demo) against it.
WORKDIR /srv/recs
USER 10001:10001
EXPOSE 8000

# For plain `docker run` only: Kubernetes ignores HEALTHCHECK and uses the probes.
# The slim image has no curl: ask /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RECS_PORT', '8000') + '/healthz', timeout=2)"]

# On SIGTERM the app turns not-ready, drains in-flight requests (RECS_SHUTDOWN_GRACE_S) and
# exits. Exec form: python is PID 1 and receives the signal itself (no shell in between).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]
