# syntax=docker/dockerfile:1
# Lumen: the build stage runs the README's set-up script on a clean Debian
# (the clean-machine check); the runtime stage is a slim Debian with only the
# runtime libraries. tests/deploy/image_test.sh builds and runs this file.

# The Debian build dependencies, in a layer of their own keyed on
# scripts/setup.sh alone: a rebuild after a source change reuses it, and
# scripts/test.sh builds this stage and runtime-deps in the background while
# it compiles the test trees (tests/deploy/image_test.sh --prefetch). The
# two dependency stages come first, so that building either one never needs
# the sources. LUMEN_IMAGE_NO_CACHE=1 tests/deploy/image_test.sh rebuilds
# every layer.
FROM debian:bookworm AS build-deps
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh --deps

FROM debian:bookworm-slim AS runtime-deps
# Exactly the packages that own the shared libraries lumend and lumen link
# (tests/deploy/runtime_deps_test.sh checks this list against ldd).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libc-ares2 libc6 libcivetweb1 libdnnl2 libgcc-s1 libgomp1 \
      libgrpc++1.51 libgrpc29 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libprotobuf32 libre2-9 libsqlite3-0 libssl3 libstdc++6 ocl-icd-libopencl1 zlib1g \
      libpq5 libcom-err2 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2 libhogweed6 \
      libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 \
      libnettle8 libp11-kit0 libsasl2-2 libtasn1-6 libunistring2 \
      libcpp-httplib0.11 libbrotli1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
RUN useradd --system --uid 10001 --home-dir /data lumen \
 && mkdir -p /models /data && chown lumen:lumen /data

# Builds the two programs (Release); the tests are built and run by
# scripts/test.sh on the host.
FROM build-deps AS build
COPY . .
# The commit for lumen_build_info (.git is not in the build context).
ARG LUMEN_COMMIT=unknown
RUN LUMEN_COMMIT="$LUMEN_COMMIT" scripts/setup.sh --targets lumend lumen

FROM runtime-deps AS runtime
COPY --from=build /src/build/bin/lumend /src/build/bin/lumen /usr/local/bin/
USER lumen
VOLUME ["/models", "/data"]
# gRPC, the OpenAI-compatible HTTP API, Prometheus metrics.
EXPOSE 50051 8080 9464
# OpenMP workers spin briefly, then sleep (base/openmp_wait.h).
ENV GOMP_SPINCOUNT=1000
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["lumen", "health", "--addr", "127.0.0.1:50051"]
ENTRYPOINT ["lumend", "--listen", "0.0.0.0:50051", "--http-listen", "0.0.0.0:8080", \
            "--metrics-listen", "0.0.0.0:9464", "--data-dir", "/data"]
CMD ["--model", "/models/model.gguf"]
