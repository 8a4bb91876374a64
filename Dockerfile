# syntax=docker/dockerfile:1
# aniworldd container image.
#
#   docker build -t aniworldd .
#   docker run -d --name aniworldd -p 8080:8080 \
#     -v aniworldd-config:/config -v aniworldd-data:/data -v /srv/anime:/library aniworldd
#
# tini is PID 1 (reaps yt-dlp/ffmpeg children, forwards SIGTERM), so `docker run --init` is not needed;
# with a runtime that injects its own init (`--init`, compose `init: true`) tini simply runs as its child.
# Config: /config/config.yaml (written from packaging/docker/config.yaml on first start, edit it freely),
# overridden by ANIWORLDD_<SECTION>__<KEY> environment variables (e.g. -e ANIWORLDD_MQTT__HOST=mosquitto).

# ---- build stage: a wheel of the package, so the runtime image carries no build tooling ----
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY aniworldd ./aniworldd
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime stage ----
FROM python:3.11-slim

ARG PUID=1000
ARG PGID=1000

# Debian's ffmpeg (yt-dlp merges/remuxes HLS with it) and tini; versions follow the base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${PGID}" aniworldd \
    && useradd --system --uid "${PUID}" --gid aniworldd --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin aniworldd \
    && mkdir -p /config /data /library \
    && chown aniworldd:aniworldd /config /data /library

COPY --from=build /wheels /wheels
# With the `postgres` extra (psycopg2): several processes share a PostgreSQL database
# (packaging/docker-compose.cluster.yml); Redis' client is a plain dependency. The versions are pyproject's,
# carried in the wheel's metadata (hadolint reads `[postgres]` as an unpinned package).
# hadolint ignore=DL3013
RUN set -- /wheels/*.whl && pip install --no-cache-dir "$1[postgres]" && rm -rf /wheels

COPY packaging/docker/config.yaml /usr/share/aniworldd/config.yaml
COPY aniworldd/config.example.yaml /usr/share/aniworldd/config.example.yaml
COPY --chmod=0755 packaging/docker/entrypoint.sh /usr/local/bin/aniworldd-entrypoint

ENV ANIWORLDD_CONFIG=/config/config.yaml \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/data/.cache \
    HOME=/data

USER ${PUID}:${PGID}
WORKDIR /data
VOLUME ["/config", "/data", "/library"]
EXPOSE 8080

# `aniworldd healthcheck` reads the same config (port, host) and GETs /health; python only, slim has no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["aniworldd", "healthcheck"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/aniworldd-entrypoint"]
CMD ["run"]
