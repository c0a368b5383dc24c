# The demo and persistgen-ops (the operator's command; it applies the
# manifest's indexes and shard keys in docker-compose.sharded.yml), built
# from this repository: a Go build stage and a small, non-root final image
# holding two static binaries and the manifest.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that source edits do not refetch them.
COPY go.mod go.sum ./
COPY embedded/go.mod embedded/go.sum ./embedded/
RUN go mod download && cd embedded && go mod download
COPY . .
RUN cd embedded && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/demo ./cmd/demo
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/persistgen-ops ./cmd/persistgen-ops

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/demo /out/persistgen-ops /usr/local/bin/
COPY --from=build /src/domains.yaml /etc/persistgen/domains.yaml
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/demo"]
