# syntax=docker/dockerfile:1
# Build stage: install the server's dependencies, then the package, into a venv.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, so a source change does not reinstall them: the base
# install's and the server extra's, at the versions CI tested (constraints.txt).
COPY pyproject.toml constraints.txt ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["server"]))' > requirements.txt \
 && /opt/venv/bin/pip install --quiet -c constraints.txt -r requirements.txt
COPY LICENSE ./
COPY docs/pypi.md ./docs/
COPY server ./server
RUN /opt/venv/bin/pip install --quiet --no-deps .

# Run stage: the venv only, as a fixed non-root user.
FROM python:3.11-slim
# request_id records (the SQLite store) live in a volume the service owns, so
# that they outlive the container; with IVSCHAT_GRPC_REDIS_URL they are in Redis.
RUN useradd --system --uid 10001 --no-create-home ivschat \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/ivschat-grpc
COPY --from=build /opt/venv /opt/venv
# Listening beyond loopback needs TLS and caller authentication: mount a
# certificate and key and set IVSCHAT_GRPC_TLS_CERT, IVSCHAT_GRPC_TLS_KEY and
# IVSCHAT_GRPC_AUTH_TOKENS (or IVSCHAT_GRPC_TLS_CLIENT_CA), or the service
# refuses to start. Health is also served in plaintext on 50052 for probes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRPC_VERBOSITY=NONE \
    IVSCHAT_GRPC_HOST=0.0.0.0 \
    IVSCHAT_GRPC_PORT=50051 \
    IVSCHAT_GRPC_HEALTH_PORT=50052 \
    IVSCHAT_GRPC_METRICS_PORT=9464 \
    IVSCHAT_GRPC_HEALTH_HOST=0.0.0.0 \
    IVSCHAT_GRPC_METRICS_HOST=0.0.0.0 \
    IVSCHAT_GRPC_STATE_DIR=/var/lib/ivschat-grpc
VOLUME /var/lib/ivschat-grpc
USER 10001
EXPOSE 50051 50052 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["python", "-m", "ivschat_grpc.healthcheck", "127.0.0.1:50052"]
# Exec form: SIGTERM reaches Python, which drains before it exits.
ENTRYPOINT ["ivschat-grpc", "serve"]
