#!/usr/bin/env bash
# Installs what crnn needs to build, test and run its demo on Debian 12 (as root, or with sudo).
# Everything comes from Debian's archive: Open MPI, parallel HDF5, OpenBLAS, jansson, CMake,
# for the tests and benchmarks Debian's python3-torch, python3-h5py and python3-numpy, and for
# the cluster tests Slurm and munge (the tests start their own Slurm) and iproute2 (the emulated
# hosts of tests/cluster), help2man (the man pages, made from each program's --help),
# Random123's headers (the generator's known-answer test) and oneDNN (libdnnl-dev: the peer that
# benchmarks/cpu_train.sh builds, benchmarks/onednn_peer.c; crnn itself does not use it).
# Extra package names given as arguments are installed too (CI adds clang for its sanitizer build).
set -euo pipefail
packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
          libopenblas-dev libjansson-dev python3-torch python3-h5py python3-numpy fortunes time
          gnuplot-nox slurm-wlm munge iproute2 help2man librandom123-dev libdnnl-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
