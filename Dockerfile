# syntax=docker/dockerfile:1
# The gateway as an image: the same locked dependencies as `make run`, installed in a build stage, run as a non-root
# user. BASE_IMAGE must provide python3 (3.11+) with venv; the official slim image does, and so does a base made
# from Debian's packages (docker/debian-base.sh) on machines that reach no image registry.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /build
COPY requirements/main.lock requirements/main.lock
RUN python3 -m venv /opt/kimi-free-api \
 && /opt/kimi-free-api/bin/pip install --no-cache-dir --disable-pip-version-check -q \
      --require-hashes -r requirements/main.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/kimi-free-api/bin/pip install --no-cache-dir --disable-pip-version-check -q \
      --no-deps --no-build-isolation . \
 && /opt/kimi-free-api/bin/pip uninstall -q -y pip setuptools wheel

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin kimi \
 && mkdir -p /data && chown kimi:kimi /data
COPY --from=build /opt/kimi-free-api /opt/kimi-free-api
ENV PATH=/opt/kimi-free-api/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data \
    TZ=Asia/Shanghai
VOLUME ["/data"]
USER kimi
WORKDIR /data
EXPOSE 8000
# No curl in a slim image: the interpreter that is there anyway asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["kimi-free-api"]
CMD ["serve"]
