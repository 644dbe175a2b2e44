# syntax=docker/dockerfile:1
#
# The oauth3 gateway as a container image: for a dstack CVM (dstack/DEPLOY.md)
# or any Docker host.
#
#   docker buildx build --platform linux/amd64 -t oauth3 .
#
# Built from source with the scripts CI uses: ./scripts/setup installs the
# wasm32-wasip2 target and Debian's clang-19, llvm-19, libclang-19-dev and
# wasi-libc, then the release build is scripts/serve's own cargo command.
# host/build.rs builds guest-runtime/ for wasm32-wasip2 during that build and
# embeds it in the binary, so the image needs no separate guest artefact.
#
# The container is meant to run with a read-only root filesystem
# (`read_only: true`, or `docker run --read-only`) and a tmpfs on /tmp: the
# gateway writes only to /data (database, replica id, compiled sandbox code).

# Pin both base images by digest for a reviewable build, e.g.
#   FROM rust:1-bookworm@sha256:<digest> AS builder
#   FROM debian:bookworm-slim@sha256:<digest>
# (`docker buildx imagetools inspect rust:1-bookworm` prints the digest).
FROM rust:1-bookworm AS builder

WORKDIR /src

# The toolchain pieces first, so that a source change does not reinstall them.
# scripts/setup runs as root here and calls apt-get directly (no sudo); it also
# adds rustfmt, clippy, curl and jq, which only the builder stage carries.
COPY scripts/setup scripts/setup
RUN ./scripts/setup

COPY . .

# Identical to scripts/serve line 12, so the binary is built with the same
# package selection and feature unification as `./scripts/serve` builds it
# (stub-github is built too, and left behind). The target dir comes from
# .cargo/config.toml (/var/tmp/oauth3-target, scripts/serve line 13); it and
# the cargo registry are BuildKit cache mounts, which are not part of any
# layer, so the binary is copied out of the cache into /out in the same step.
RUN --mount=type=cache,id=oauth3-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=oauth3-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=oauth3-target,target=/var/tmp/oauth3-target,sharing=locked \
    cargo build --release --locked -p oauth3-gateway -p stub-github \
 && bin="${CARGO_TARGET_DIR:-/var/tmp/oauth3-target}/release" \
 && install -D -m 0755 "$bin/oauth3" /out/oauth3


FROM debian:bookworm-slim

# The binary links only glibc and libgcc_s (both in the base image): TLS is
# rustls with webpki-roots compiled in, SQLite and zstd are bundled, no
# OpenSSL. ca-certificates is there for anything that consults system roots.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid, and /data owned by it before VOLUME, so that a new
# named volume starts with that owner and mode 0700.
RUN groupadd --gid 10001 oauth3 \
 && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin oauth3 \
 && install -d -m 0700 -o 10001 -g 10001 /data

COPY --from=builder /out/oauth3 /usr/local/bin/oauth3

# The compiled-code cache stays on the data volume (its default,
# <data dir>/cache, spelled out): it survives restarts and needs no writable
# root filesystem. Every other setting is left to the deployment (the dstack
# compose file sets them as measured literals).
ENV OAUTH3_DATA_DIR=/data \
    OAUTH3_CACHE_DIR=/data/cache \
    OAUTH3_LISTEN=0.0.0.0:3737

# The gateway reads a `.env` in its working directory: `/` holds none and is
# read-only in the intended deployment, so configuration comes only from the
# environment (not from a file someone could drop on the data volume).
WORKDIR /
VOLUME /data
EXPOSE 3737
USER 10001

# GET /health answers 200 when the database answers. No curl in the image:
# bash (essential in Debian) speaks HTTP/1.1 over /dev/tcp. The start period
# covers the first start, which compiles the sandbox runtime.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OAUTH3_LISTEN##*:} && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]

ENTRYPOINT ["oauth3", "serve"]
