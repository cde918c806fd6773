# Builds the manager image (no Docker engine runs on the development
# machines; CI builds bin/fido directly).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/fido .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/fido /fido
USER 65532:65532
ENTRYPOINT ["/fido"]
