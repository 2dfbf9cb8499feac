# syntax=docker/dockerfile:1.7
# user-service container image (docs/deployment.md).
#
#   docker build -t user-service .
#   docker build --build-arg USER_SERVICE_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t user-service .
#
# Stage 1 builds the release binary with BuildKit cache mounts: the cargo registry and the
# target folder survive between builds, so a change to our code recompiles only our crates.
# Stage 2 is distroless `cc` (glibc, libgcc, CA certificates; no shell, no package manager),
# running as the image's non-root user. The binary links only glibc (rustls, no OpenSSL):
# scripts/test.d/10-deploy-files.sh checks that with `ldd`.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# No .git in the build context (.dockerignore): the commit comes from the builder.
ARG USER_SERVICE_GIT_COMMIT=unknown
ENV USER_SERVICE_GIT_COMMIT=${USER_SERVICE_GIT_COMMIT} \
    CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin user-service \
    && install -D -m 0755 target/release/user-service /out/user-service \
    && install -d -m 0755 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG USER_SERVICE_GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="user-service" \
      org.opencontainers.image.description="Users, preferences and encrypted OAuth provider tokens" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${USER_SERVICE_GIT_COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deployment.md"
COPY --from=build /out/user-service /usr/local/bin/user-service
# The only writable paths: the data folder (dev keys, SQLite, backups, audit archive) is a
# volume; everything else may be mounted read-only.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
# 65532 is distroless' `nonroot`; numeric so Kubernetes' runAsNonRoot can check it.
USER 65532:65532
ENV LISTEN_ADDR=0.0.0.0:8080 \
    DATA_DIR=/data \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
# No curl in distroless: the binary probes itself (exit 0 when /ready answers 200).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/user-service", "probe", "http://127.0.0.1:8080/ready"]
ENTRYPOINT ["/usr/local/bin/user-service"]
CMD ["serve"]
