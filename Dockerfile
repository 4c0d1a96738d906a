# syntax=docker/dockerfile:1
#
# simgate in a container. Build:
#   docker build -t simgate .
# Run with a real modem (the container needs the device and its group):
#   docker run -d --name simgate \
#     --device /dev/serial/by-id/usb-Quectel_EC25-if02-port0:/dev/modem0 \
#     --group-add "$(getent group dialout | cut -d: -f3)" \
#     -v /etc/simgate:/etc/simgate:ro -v simgate-state:/var/lib/simgate \
#     -p 127.0.0.1:4222:4222 -p 127.0.0.1:9464:9464 \
#     simgate serve --config /etc/simgate/simgate.yaml
# with `device: /dev/modem0` in the configuration. The embedded NATS server
# requires authentication: auth services use the publisher nkey seed the
# daemon makes in the state volume (/var/lib/simgate/nats/publisher.nk). To
# reach it from outside the container, nats.listen must be 0.0.0.0:4222,
# which simgate allows only with TLS (nats.embedded.tls); or point nats.url
# at your NATS cluster (configs/nats/), with the same policy hash key file
# in every daemon's state volume. A replugged modem
# gets a new device node: a container keeps the old one, so prefer a udev
# rule that restarts the container, or run simgate on the host under systemd.
# Try it without hardware (no real SMS is sent):
#   docker run -d --name simgate-demo simgate
#   docker exec simgate-demo simgate send --to +4526227921 --code 034812 --wait

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/simgate ./cmd/simgate \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/simgate /usr/local/bin/simgate
COPY --from=build --chown=65532:65532 /out/state /var/lib/simgate
# distroless "nonroot" is uid/gid 65532.
USER 65532:65532
ENV SIMGATE_STATE_DIR=/var/lib/simgate \
    SIMGATE_METRICS_LISTEN=0.0.0.0:9464
VOLUME /var/lib/simgate
EXPOSE 4222 9464
ENTRYPOINT ["/usr/local/bin/simgate"]
CMD ["serve", "--simulate", "1"]
