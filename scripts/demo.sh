#!/usr/bin/env bash
# The main job: set up, build the busybox test image (FROM scratch + ADD of busybox-static's root
# filesystem), build a small image on it, show their histories and run a container.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export IPYDOCK_ROOT=${IPYDOCK_ROOT:-/var/lib/ipydock}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -c 'import sys; from ipydock.testing import busybox_tarball; busybox_tarball(sys.argv[1])' "$work/rootfs.tar.gz"
cat > "$work/Dockerfile" <<'DOCKERFILE'
FROM scratch
ADD rootfs.tar.gz /
CMD ["sh"]
DOCKERFILE
mkdir "$work/app"
cat > "$work/app/Dockerfile" <<'DOCKERFILE'
FROM busybox
RUN echo "hello from a build step" > /hello && dd if=/dev/zero of=/big bs=1k count=64
RUN rm /big
ENV GREETING=hi
CMD ["cat", "/hello"]
DOCKERFILE
ipd() { .venv/bin/ipydock "$@"; }
set -x
ipd build -t busybox "$work"
ipd image history busybox
ipd build -t demo "$work/app"
ipd image history demo
ipd image ls
ipd run --rm demo
ipd system df
ipd system server        # the warm process the commands above ran in (see README)
ipd system server stop   # it would leave by itself after 10 idle minutes
