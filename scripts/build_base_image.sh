#!/usr/bin/env bash
# Builds a local base image for the Dockerfile when no registry (Docker Hub) can be reached:
# Debian bookworm (debootstrap, minbase) + its Python 3.11 + pip + torch==2.13.0 (CPU wheel),
# imported with `docker import`. Then:   BASE_IMAGE=<printed tag> ./build.sh
#
# The image behaves like the pytorch/pytorch images the Dockerfile defaults to: `python` is the
# interpreter that has torch, and `pip install --user` works (Debian's PEP 668 marker is removed,
# the container is the environment).
#
# Needs root, debootstrap (apt-get install debootstrap), a reachable Debian mirror and a Docker
# engine (scripts/start_dockerd.sh). Idempotent: does nothing when the tag exists (FORCE=1 rebuilds).
#
# Environment:
#   BASE_TAG         image tag to create          (default lmc-base:bookworm-py311-torch2.13.0-cpu)
#   DEBIAN_MIRROR    Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   TORCH_VERSION    torch version to install     (default 2.13.0)
#   TORCH_WHEEL      path to a torch wheel; otherwise one is fetched with the host's pip
#                    (`pip download torch==$TORCH_VERSION`, honouring the host's pip config, e.g.
#                    find-links to a folder of CPU wheels) into .whl/ and reused from there
#   TORCH_INDEX_URL  extra index for that download, e.g. https://download.pytorch.org/whl/cpu
#   PIP_INDEX_URL    http(s) mirror for torch's own dependencies inside the image (default PyPI)
#   CA_BUNDLE        CA bundle pip uses inside the chroot (default: the host's, see below)
#   FORCE=1          rebuild even when BASE_TAG exists
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG=${BASE_TAG:-lmc-base:bookworm-py311-torch2.13.0-cpu}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
say() { echo "build_base_image: $*" >&2; }

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  say "$BASE_TAG exists (FORCE=1 rebuilds)"
  echo "$BASE_TAG"
  exit 0
fi
[ "$(id -u)" = 0 ] || { say "debootstrap and chroot need root"; exit 1; }
command -v debootstrap >/dev/null || { say "debootstrap missing: apt-get install -y debootstrap"; exit 1; }

# The host's CA bundle: behind a TLS-inspecting proxy the Debian bundle alone cannot reach PyPI.
ca_bundle=${CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}

# 1. The torch wheel, found with the host's pip (its config may point at a local CPU wheel).
cached_wheel() {
  local w
  for w in .whl/torch-"$TORCH_VERSION"[-+]*cp311*linux*x86_64.whl; do
    [ -f "$w" ] && { echo "$w"; return 0; }
  done
  return 1
}
wheel=${TORCH_WHEEL:-}
if [ -z "$wheel" ]; then
  mkdir -p .whl
  wheel=$(cached_wheel || true)
  if [ -z "$wheel" ]; then
    say "fetching torch==$TORCH_VERSION for CPython 3.11 / x86_64 into .whl/"
    extra=()
    [ -n "${TORCH_INDEX_URL:-}" ] && extra=(--extra-index-url "$TORCH_INDEX_URL")
    python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 "${extra[@]}" -d .whl "torch==$TORCH_VERSION" >&2
    wheel=$(cached_wheel) || { say "pip download found no torch==$TORCH_VERSION wheel for CPython 3.11"; exit 1; }
  fi
fi
[ -f "$wheel" ] || { say "torch wheel not found: $wheel"; exit 1; }
case "$wheel" in
  *+cpu*) ;;
  *) say "warning: $wheel is not a +cpu build; a CUDA wheel makes the image several GB larger" ;;
esac
say "torch wheel: $wheel"

# 2. A minimal Debian with the distribution's Python 3.11.
rootfs=$(mktemp -d /var/tmp/lmc-rootfs.XXXXXX)
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT
say "debootstrap bookworm (minbase) into $rootfs from $DEBIAN_MIRROR"
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
  bookworm "$rootfs" "$DEBIAN_MIRROR" >&2

# 3. torch into the system Python, its dependencies from PyPI (or PIP_INDEX_URL).
cp "$wheel" "$rootfs/tmp/$(basename "$wheel")"
cp "$ca_bundle" "$rootfs/tmp/host-ca.crt"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
pip_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
         PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120)
case "${PIP_INDEX_URL:-}" in http://*|https://*) pip_env+=(PIP_INDEX_URL="$PIP_INDEX_URL") ;; esac
say "installing $(basename "$wheel") into the image's Python"
env -i "${pip_env[@]}" chroot "$rootfs" python3 -m pip install --no-cache-dir --break-system-packages \
  "/tmp/$(basename "$wheel")" >&2
env -i "${pip_env[@]}" chroot "$rootfs" python3 -c \
  "import sys, torch; assert sys.version_info[:2] == (3, 11), sys.version; print('torch', torch.__version__, 'python', sys.version.split()[0])" >&2

# 4. Leave no host traces and no caches; let `pip install --user` work as in the pytorch images.
rm -f "$rootfs/tmp/$(basename "$wheel")" "$rootfs/tmp/host-ca.crt" "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
: > "$rootfs/etc/resolv.conf"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/root/.cache

# 5. Import. docker import starts from an empty config, so PATH and the default command are set here.
say "importing as $BASE_TAG"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python"]' - "$BASE_TAG" >&2
docker run --rm --network none "$BASE_TAG" python -c "import torch; print('base image ok: torch', torch.__version__)" >&2
echo "$BASE_TAG"
