#!/usr/bin/env bash
# Install what ipydock needs on a fresh Debian machine (as root): Debian packages and a venv.
# Usage: scripts/setup.sh [--test]   (--test adds dockerd, skopeo, umoci, crun, docker-registry
# and test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(busybox-static)
packages+=(uidmap fuse-overlayfs)  # ordinary users: id ranges; layers where the kernel refuses
packages+=(libseccomp2 tini)  # seccomp profiles (through pyseccomp); tini-static for --init
packages+=(iptables)  # bridges: isolation, outbound NAT, published ports (DNAT)
packages+=(mmdebstrap)  # image bootstrap (its unshare mode for ordinary users needs uidmap)
packages+=(gcc libc6-dev)  # the native `ipydock` command (below); tests/security's helper
# Node (>= 18) and npm build the JupyterLab extension (labextension/) during `pip install`.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(docker.io skopeo umoci crun iproute2 chromium docker-registry apache2-utils
            docker-compose  # the API service: compose up/down through it (tests/service)
            golang-github-opencontainers-image-spec-dev)
  packages+=(mmdebstrap uidmap proot)  # the rootless suite: a Debian root, id ranges, PRoot
  packages+=(podman openssl openssh-server)  # beyond one machine: Podman's service, a TLS
  # engine's certificates, a private sshd for ssh:// engines
  packages+=(slirp4netns iperf3)  # rootless outbound networking; the network benchmark
fi
# slirp4netns opens /dev/net/tun as the user: Debian's udev makes it 0666, a machine without
# udev (a VM, a container) may have it 0600
if [[ "${1:-}" == "--test" && -c /dev/net/tun ]]; then
  chmod 0666 /dev/net/tun
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
extra=""
[[ "${1:-}" == "--test" ]] && extra="[test]"
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".${extra}"
# setuptools' .pth hook (_distutils_hack) runs at every Python start; nothing needs it at run
# time (builds use isolated environments), and every CLI command pays its ~10 ms.
if .venv/bin/python -c 'import setuptools' 2>/dev/null; then
  .venv/bin/pip uninstall -y -q setuptools
fi
# PYTHONDONTWRITEBYTECODE is often set: compile once here so every CLI start reads .pyc files.
.venv/bin/python -m compileall -q ipydock >/dev/null
# The native `ipydock` command in place of pip's script (the same, without a Python start per
# command); without a C compiler the script stays, and works.
.venv/bin/python -m ipydock.native_launcher install || echo "ipydock: kept the Python client or pid 1"
