#!/usr/bin/env bash
# Prepares Debian's rootful podman to build and run Lumen's image here
# (idempotent; see ../shared/notes/containers.md for why each step):
#   - runc instead of crun (crun fails on these VMs: cgroups in hybrid mode),
#   - default ulimits no higher than the calling shell's (no CAP_SYS_RESOURCE),
#   - the Debian base images the Dockerfile names, made from the apt mirror
#     with mmdebstrap when no registry is reachable (a minbase rootfs is
#     exactly a newcomer's clean machine),
#   - a local Prometheus stand-in tagged with the name the compose file uses.
# Packages come from scripts/setup.sh --deps --test.
set -euo pipefail
cd "$(dirname "$0")/.."

conf=/etc/containers/containers.conf
if ! grep -qs '^runtime *= *"runc"' "$conf"; then
  mkdir -p /etc/containers
  cat >"$conf" <<'EOF'
# Written by Lumen's scripts/podman-setup.sh.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
  echo "podman-setup: wrote $conf"
fi

if ! podman image exists docker.io/library/debian:bookworm-slim; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "podman-setup: making the Debian bookworm minbase image with mmdebstrap"
  # The mirror this machine's apt uses (the only one reachable).
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  mirror=${mirror:-http://deb.debian.org/debian}
  mmdebstrap --quiet --variant=minbase bookworm "$work/rootfs.tar" "$mirror"
  podman import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/rootfs.tar" docker.io/library/debian:bookworm-slim >/dev/null
fi
podman image exists docker.io/library/debian:bookworm ||
  podman tag docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm

# Registries are unreachable: Prometheus from Debian's package, tagged as the
# image deploy/docker-compose.yml names.
prom_image=$(sed -n 's/^ *image: *\(prom\/prometheus[^ ]*\).*/\1/p' deploy/docker-compose.yml)
if ! podman image exists "docker.io/$prom_image"; then
  echo "podman-setup: building the Prometheus stand-in $prom_image"
  podman build --pull=never --format docker -t "docker.io/$prom_image" \
    -f tests/deploy/prometheus.Containerfile tests/deploy >/dev/null
fi
echo "podman-setup: ready"
