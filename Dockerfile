# The demo, built from this repository: a Go build stage and a small,
# non-root final image holding one static binary.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that source edits do not refetch them.
COPY go.mod go.sum ./
COPY embedded/go.mod embedded/go.sum ./embedded/
RUN cd embedded && go mod download
COPY . .
RUN cd embedded && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/demo ./cmd/demo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/demo /usr/local/bin/demo
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/demo"]
