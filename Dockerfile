# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run from a slim Debian with
# only the two binaries (wafer and the WeChat mock) and CA certificates.
#
# The build context is filtered by .dockerignore, an allow-list of what cargo
# needs (manifests, build.rs, src, sql, benches, examples, workspace members).
# scripts/check-docker-context builds a copy of exactly these files, so run it
# after changing this file or .dockerignore.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# build.rs stamps the commit into wafer_build_info; the context has no .git,
# so it comes in as a build argument (docker-compose.yml passes it).
ARG WAFER_GIT_COMMIT=unknown
# The cache mounts keep downloaded crates between builds, so editing wafer's
# code does not refetch its dependencies. --workspace: the binaries may live in
# any workspace member, whatever default-members says.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked --workspace --bin wafer --bin wechat-mock

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home wafer
COPY --from=build /src/target/release/wafer /usr/local/bin/wafer
COPY --from=build /src/target/release/wechat-mock /usr/local/bin/wechat-mock
USER wafer
ENV WAFER_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["wafer"]
CMD ["serve"]
