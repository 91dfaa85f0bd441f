# syntax=docker/dockerfile:1
# The motorpool image: a static binary (CGO off: the SQLite driver, modernc.org/sqlite, is pure
# Go) on distroless's static base, as its non-root user. Everything the program reads at run
# time (migrations, the contract, Swagger UI, Lua scripts) is compiled in.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t motorpool .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
# .git is not in the context (.dockerignore), so the version comes from the build argument,
# not the toolchain's VCS stamp.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/motorpool . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/motorpool /motorpool
# Embedded mode (no DATABASE_URL, no Valkey) keeps its SQLite file and signing key here; mount
# a volume on it to keep them.
COPY --from=build --chown=65532:65532 /out/data /data
ENV HTTP_ADDR=:8080 \
    DATA_DIR=/data \
    SQLITE_PATH=/data/motorpool.db
USER 65532:65532
EXPOSE 8080
# GET /healthz on HTTP_ADDR's port; the image has no shell or curl, so the binary asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/motorpool", "healthcheck"]
ENTRYPOINT ["/motorpool"]
CMD ["serve"]
