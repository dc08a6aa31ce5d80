# Image for every app service of docker-compose.yml (migrate, broker-sync, ingest, alerts, api).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs: never the local .venv/, .run/ (demo secrets, local databases)
# or .build/. "README.m[d]" copies the README when it exists without failing when it does not.
# The locked runtime dependencies first (their own layer; every file checked against its hash),
# then the project without resolving anything again.
COPY requirements/main.txt requirements/build.txt ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/build.txt -r requirements/main.txt
COPY pyproject.toml README.m[d] ./
COPY devices ./devices
COPY ingest ./ingest
COPY alerts ./alerts
COPY dashboard_api ./dashboard_api
COPY simulators ./simulators
RUN pip install --no-deps --no-build-isolation . && rm -rf /app/build /app/*.egg-info

# The app runs as an unprivileged user. `broker-sync` runs as uid 1883 instead, the uid of
# the `mosquitto` user in the eclipse-mosquitto image, so that the passwd/acl files it writes
# (mode 0600) are readable by the broker; /mosquitto/config is created here owned by that uid
# so that an empty named volume mounted there starts with the right owner.
RUN groupadd --system --gid 10001 eldercare \
 && useradd --system --uid 10001 --gid eldercare --home-dir /app --shell /usr/sbin/nologin eldercare \
 && groupadd --system --gid 1883 mosquitto \
 && useradd --system --uid 1883 --gid mosquitto --no-create-home --shell /usr/sbin/nologin mosquitto \
 && mkdir -p /mosquitto/config /mosquitto/certs \
 && chown 1883:1883 /mosquitto/config /mosquitto/certs

USER eldercare

EXPOSE 8000
CMD ["python", "-m", "dashboard_api", "serve", "--host", "0.0.0.0"]
