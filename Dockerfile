# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run from a slim Debian with
# only the two binaries (wafer and the WeChat mock) and CA certificates.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that editing wafer's code does not refetch them.
COPY Cargo.toml Cargo.lock ./
RUN cargo fetch --locked
COPY src src
COPY sql sql
RUN cargo build --release --locked --bin wafer --bin wechat-mock

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
