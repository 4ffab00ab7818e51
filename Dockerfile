# syntax=docker/dockerfile:1
# Build stage: install the package and its runtime dependencies into a venv.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, so a source change does not reinstall them.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
 && /opt/venv/bin/pip install --quiet -r requirements.txt
COPY README.md ./
COPY server ./server
RUN /opt/venv/bin/pip install --quiet --no-deps .

# Run stage: the venv only, as a fixed non-root user.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home ivschat
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 IVSCHAT_GRPC_HOST=0.0.0.0
USER 10001
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["python", "-m", "ivschat_grpc.healthcheck", "127.0.0.1:50051"]
ENTRYPOINT ["ivschat-grpc", "serve"]
