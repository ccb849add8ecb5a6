#!/usr/bin/env bash
# Builds a python3 base image from Debian's own packages, for machines that reach Debian's archive but no image
# registry (so `python:3.11-slim` cannot be pulled). Pass the result to the Dockerfile:
#   docker/debian-base.sh localhost/kimi-free-api-base:bookworm
#   podman build --build-arg BASE_IMAGE=localhost/kimi-free-api-base:bookworm -t kimi-free-api .
# Needs mmdebstrap and podman (Debian packages), run as root.
set -euo pipefail
tag=${1:-localhost/kimi-free-api-base:bookworm}
suite=${SUITE:-bookworm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

hooks=()
# The base trusts what this machine trusts (a TLS-inspecting egress proxy, say), so pip in the build stage reaches
# the package index exactly as the host's pip does; pip reads its own CA bundle unless told otherwise.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  hooks+=(--customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share'
          --customize-hook='chroot "$1" update-ca-certificates >/dev/null')
fi
hooks+=(--customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf"')

mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates "${hooks[@]}" \
  "$suite" "$work/rootfs.tar"
podman import --quiet --change 'CMD ["python3"]' "$work/rootfs.tar" "$tag" >/dev/null
echo "$tag"
