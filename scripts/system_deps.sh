#!/usr/bin/env bash
# System packages the Python environment needs: cmake and a C compiler (interface generation)
# and libusb (open3d-cpu). Installs only what is missing, with apt when run as root.
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v cc >/dev/null || missing+=(gcc g++)
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so' || missing+=(libusb-1.0-0)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "system_deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "system_deps: not root; install these with your package manager: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
