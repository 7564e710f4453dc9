# syntax=docker/dockerfile:1
#
# transformer-serving: the gRPC translation server and its client, with the
# demo model baked in.
#
#   docker build -t transformer-serving:0.1.0 .
#   docker run --rm -p 50051:50051 -p 8080:8080 -p 9464:9464 transformer-serving:0.1.0
#   docker run --rm --network host --entrypoint /opt/transformer-serving/bin/transformer-client \
#       transformer-serving:0.1.0 translate --help
#
# Every server flag can be set from the environment as TS_<FLAG>, e.g.
#   docker run -e TS_NUM_WORKERS=2 -e TS_INTRA_THREADS=1 ...
# or passed as arguments after the image name (the command line wins).

############################################################################
# Build stage: the -dev packages from scripts/setup.sh --build, then scripts/build.sh.
############################################################################
FROM debian:bookworm AS build

ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src

# Only setup.sh first, so the package layer is cached across source edits.
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh --build && rm -rf /var/lib/apt/lists/*

COPY . .
# ccache (from setup.sh) keeps its cache in a BuildKit cache mount, so
# rebuilds after small edits are quick.
RUN --mount=type=cache,target=/root/.cache/ccache \
    CCACHE_DIR=/root/.cache/ccache bash scripts/build.sh -DTS_BUILD_TESTS=OFF \
 && strip build/bin/transformer-server build/bin/transformer-client

############################################################################
# Runtime stage: only the shared libraries the binaries load.
############################################################################
FROM debian:bookworm-slim AS runtime

# Runtime library packages: the package of every library that `ldd` resolves
# for transformer-server and transformer-client (the server links protobuf
# statically; the client needs libprotobuf32). libc, libstdc++, libgcc and
# libm come with the base image. tests/deploy/check_deploy.sh checks this
# list against ldd + dpkg -S; keep it on one line.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libdnnl2 ocl-icd-libopencl1 libgomp1 libsentencepiece0 libicu72 libgumbo1 libcld2-0 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 libcpp-httplib0.11 libbrotli1 libc-ares2 libre2-9 libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root user; Kubernetes' runAsNonRoot can verify the numeric id.
RUN groupadd --system --gid 10001 transformer \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin transformer

COPY --from=build /src/build/bin/transformer-server /src/build/bin/transformer-client \
     /opt/transformer-serving/bin/
COPY models/marian-en-de-multi30k /opt/transformer-serving/models/marian-en-de-multi30k

WORKDIR /opt/transformer-serving
ENV PATH=/opt/transformer-serving/bin:$PATH \
    TS_MODEL_DIR=/opt/transformer-serving/models/marian-en-de-multi30k

USER 10001:10001

# gRPC (TS_PORT), HTTP/JSON and the attention page (TS_HTTP_PORT), Prometheus
# /metrics (TS_METRICS_PORT).
EXPOSE 50051 8080 9464

# SIGTERM: health goes NOT_SERVING, queued and running work drains for at
# most TS_DRAIN_TIMEOUT_S (30 s), then the process exits 0. `docker stop`
# waits only 10 s by default: use `docker stop -t 40`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/transformer-serving/bin/transformer-server"]
