#!/usr/bin/env bash
# The main job: set up, build the busybox test image (FROM scratch + ADD of busybox-static's
# root filesystem, as `image import`), and show its history and the image list.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export IPYDOCK_ROOT=${IPYDOCK_ROOT:-/var/lib/ipydock}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -c 'import sys; from ipydock.testing import busybox_tarball; busybox_tarball(sys.argv[1])' "$work/rootfs.tar.gz"
ipd() { .venv/bin/ipydock "$@"; }
set -x
ipd image import --change 'CMD ["sh"]' --message "busybox-static root filesystem" "$work/rootfs.tar.gz" busybox:latest
ipd image history busybox
ipd image ls
ipd system df
