# syntax=docker/dockerfile:1
# giropops-senhas on Wolfi, as the course builds it: wheels installed into a virtualenv in Chainguard's
# Python "-dev" image (it has a shell and pip), then only that virtualenv copied into Chainguard's distroless
# Python image — no shell, no pip, no package manager, running as the non-root user 65532.
#
#   docker build -t giropops-senhas .
#   docker run --rm -p 5000:5000 giropops-senhas            # embedded store
#   docker compose up --build                               # with Redis (compose.yaml)
#
# Both stages use the same tag so the virtualenv's python links to the interpreter the final image has.
ARG PYTHON_IMAGE=cgr.dev/chainguard/python
ARG PYTHON_TAG=latest

FROM ${PYTHON_IMAGE}:${PYTHON_TAG}-dev AS build
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /app/venv
# Only what serving the app needs (the toolkit's own dependencies stay out of the image); the same
# requirements as the "app" block of pyproject.toml's dependencies.
RUN /app/venv/bin/pip install "flask>=3.0" "gunicorn>=24" "redis>=5" "hiredis>=2" "prometheus-client>=0.20"
COPY pyproject.toml README.md ./
COPY src ./src
RUN /app/venv/bin/pip install --no-deps . \
 && /app/venv/bin/python -m compileall -q /app/venv/lib \
 && /app/venv/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE}:${PYTHON_TAG}
WORKDIR /app
COPY --from=build /app/venv /app/venv
ENV PATH=/app/venv/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    PORT=5000
USER 65532:65532
EXPOSE 5000
# No shell or curl here: the healthcheck is the image's own Python.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s \
  CMD ["/app/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '5000'), timeout=2)"]
# SIGTERM (docker stop) is a graceful stop: requests in flight finish, then gunicorn exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/venv/bin/giropops-senhas"]
