# provisio in a container: built with the Rust toolchain, run from a slim Debian image as an
# unprivileged user. docs/deployment.md ("Container") explains how to run it.
#
#   docker build -t provisio .
#   docker run -d -p 8080:8080 -v provisio-data:/var/lib/provisio provisio
#
# The build context is only Cargo.toml, Cargo.lock, crates/ and LICENSE (.dockerignore).

# Build: Rust 1.95, the toolchain CI uses (the workspace's rust-version, 1.94, is the floor), on
# the same Debian release as the runtime image (the binary links against its glibc).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN cargo build --release --locked -p provisio

# Run: CA roots (HTTPS to Stripe, the connector and the events receiver; the platform verifier
# reads the system store) and an unprivileged user owning the data directory, with a fixed uid and
# gid (10001) for bind mounts and Kubernetes fsGroup.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 provisio \
 && useradd --system --uid 10001 --gid provisio --home-dir /var/lib/provisio --no-create-home \
      --shell /usr/sbin/nologin provisio \
 && install -d -o provisio -g provisio -m 0750 /var/lib/provisio
COPY --from=build /src/target/release/provisio /usr/local/bin/provisio
COPY LICENSE /usr/share/doc/provisio/LICENSE
USER provisio:provisio
WORKDIR /var/lib/provisio
# The SQLite shape keeps its database (and the generated signing secret with it) in the volume;
# for PostgreSQL set PROVISIO_DATABASE_URL at run time. Secrets come from the environment.
ENV PROVISIO_DATABASE_URL=sqlite:///var/lib/provisio/provisio.db \
    PROVISIO_LOG_FORMAT=json
VOLUME ["/var/lib/provisio"]
EXPOSE 8080
# Readiness, asked over HTTP by the binary itself (the image has no curl): healthy only while
# /readyz answers 2xx, that is while the database (and in connector mode the SaaS) answers.
# Change the port here too when serving on another one.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/provisio", "check-health", "--url", "http://127.0.0.1:8080/readyz", "--timeout-secs", "3"]
ENTRYPOINT ["/usr/local/bin/provisio"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
