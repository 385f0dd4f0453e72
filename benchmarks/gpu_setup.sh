#!/usr/bin/env bash
# Builds crnn with CUDA on a GPU machine that has the CUDA toolkit, CMake and PyTorch (with its
# nvidia-nccl-cu13) but no Open MPI, HDF5, OpenBLAS or jansson, and no network.
#
#   benchmarks/gpu_setup.sh download       # A, on a Debian 12 machine with those packages and apt:
#                                          #    their .deb files (runtime, -dev, and the libraries
#                                          #    they load) into carry/debs (git-ignored)
#   benchmarks/gpu_setup.sh build [DIR]    # B, on the GPU machine: unpacks carry/debs into
#                                          #    carry/prefix, configures and builds crnn in DIR
#                                          #    (default build-gpu) with CRNN_CUDA=ON
#   source <(benchmarks/gpu_setup.sh env)  # the environment B uses (PATH, CMAKE_PREFIX_PATH,
#                                          #    LD_LIBRARY_PATH, OPAL_PREFIX, NCCL_ROOT, ...)
#
# B runs as any user and writes only under carry/ and DIR: `dpkg -x` into a folder, never into /.
# Libraries the GPU machine already has (by soname, `ldconfig -p`) are left out of the prefix's
# library path, so that its own, newer ones are used (its Python too).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEBS=$ROOT/carry/debs
PREFIX=$ROOT/carry/prefix
ARCH_DIR=x86_64-linux-gnu

# The packages crnn builds and runs with, and (computed by `download`) the libraries they load.
ROOTS="libopenmpi3 libopenmpi-dev openmpi-bin openmpi-common libpmix2
       libhdf5-openmpi-103-1 libhdf5-openmpi-dev
       libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev
       libjansson4 libjansson-dev pkgconf pkgconf-bin libpkgconf3"
# On every machine that runs CUDA and PyTorch; never carried. Then Open MPI's network transports
# (InfiniBand, UCX, libfabric, PSM, munge): one GPU node needs shared memory only, and Open MPI
# skips a plugin whose library is missing.
BASE="libc6 libgcc-s1 libstdc++6 zlib1g
      libucx0 libfabric1 libpsm2-2 libpsm-infinipath1 ibverbs-providers libibverbs1 librdmacm1
      libnl-3-200 libnl-route-3-200 libmunge2"

closure() {
    # ELF files of the root packages (Open MPI's and PMIx's plugins included) -> the libraries
    # they load -> the packages holding them, until nothing new comes
    local pkgs=" $(echo $ROOTS) " todo="$ROOTS" next f p
    while [ -n "$(echo $todo)" ]; do
        next=""
        for f in $(dpkg -L $todo 2>/dev/null | grep -E '(\.so(\.[0-9.]+)?|/bin/[^/]+)$' | sort -u); do
            [ -f "$f" ] && [ ! -L "$f" ] || continue
            ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $3}'
        done | sort -u | xargs -r -n1 readlink -f | sort -u | xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u > /tmp/crnn-deps.$$
        for p in $(cat /tmp/crnn-deps.$$); do
            case " $(echo $BASE) $pkgs " in *" $p "*) ;; *) pkgs="$pkgs$p "; next="$next $p" ;; esac
        done
        todo=$next
    done
    rm -f /tmp/crnn-deps.$$
    echo $pkgs
}

download() {
    for p in $ROOTS; do
        dpkg -s "$p" >/dev/null 2>&1 || { echo "gpu_setup: $p is not installed here (launch/deps.sh installs crnn's packages)" >&2; exit 1; }
    done
    mkdir -p "$DEBS"
    grep -qs '^/carry/' .gitignore || { echo "gpu_setup: carry/ must be git-ignored" >&2; exit 1; }
    local pkgs
    pkgs=$(closure)
    echo "gpu_setup: $(echo $pkgs | wc -w) packages: $pkgs"
    # the installed version where the archive still has it (the -dev files then match the
    # libraries crnn was tested with), else the archive's
    rm -f "$DEBS"/*.deb
    local p v APT_OPTS="-o APT::Sandbox::User=root" # carry/ need not be readable by _apt
    for p in $pkgs; do
        v=$(dpkg-query -W -f='${Version}' "$p")
        (cd "$DEBS" && { apt-get $APT_OPTS download -q "$p=$v" 2>/dev/null || apt-get $APT_OPTS download -q "$p"; }) >/dev/null
    done
    echo "gpu_setup: $(ls "$DEBS"/*.deb | wc -l) files, $(du -sh "$DEBS" | cut -f1) in $DEBS"
}

nccl_root() {
    # PyTorch's NCCL (nvidia-nccl-cu13): its folder holds include/nccl.h and lib/libnccl.so.2
    if [ -n "${NCCL_ROOT:-}" ]; then echo "$NCCL_ROOT"; return; fi
    python3 - <<'PY' 2>/dev/null || true
import os, importlib.util
spec = importlib.util.find_spec("nvidia.nccl")
if spec and spec.submodule_search_locations:
    print(list(spec.submodule_search_locations)[0])
PY
}

print_env() {
    local lib=$PREFIX/usr/lib/$ARCH_DIR nccl
    nccl=$(nccl_root)
    echo "export OPAL_PREFIX=$PREFIX/usr"
    echo "export PATH=$PREFIX/usr/bin:\$PATH"
    echo "export CMAKE_PREFIX_PATH=$PREFIX/usr:$PREFIX/devlinks${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    echo "export PKG_CONFIG_PATH=$lib/pkgconfig"
    echo "export PKG_CONFIG_SYSROOT_DIR=$PREFIX"
    echo "export LD_LIBRARY_PATH=$PREFIX/lib-missing:$lib/openmpi/lib:$lib/hdf5/openmpi:$lib/openblas-pthread${nccl:+:$nccl/lib}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
    echo "export OMPI_MCA_mca_base_component_show_load_errors=0"
    echo "export OMPI_MCA_btl=self,vader"
    echo "export OMPI_MCA_pml=ob1"
    [ -n "$nccl" ] && echo "export NCCL_ROOT=$nccl"
    true
}

unpack() {
    ls "$DEBS"/*.deb >/dev/null 2>&1 || { echo "gpu_setup: no .deb files in $DEBS: run 'gpu_setup.sh download' on the Debian machine first" >&2; exit 1; }
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    for f in "$DEBS"/*.deb; do dpkg -x "$f" "$PREFIX"; done
    local lib=$PREFIX/usr/lib/$ARCH_DIR bin=$PREFIX/usr/bin
    # what Debian's alternatives would have linked
    ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
    ln -sf openblas-pthread/libopenblas.so "$lib/libopenblas.so"
    ln -sf openblas-pthread/libblas.so.3 "$lib/libblas.so.3"
    for t in mpicc mpirun mpiexec; do
        [ -e "$bin/$t" ] || ln -sf "$t.openmpi" "$bin/$t"
    done
    # HDF5's compiler wrapper names its prefix; CMake's FindHDF5 asks it for the paths
    [ -e "$bin/h5pcc" ] || ln -sf h5pcc.openmpi "$bin/h5pcc"
    sed -i "s|^prefix=\"/usr\"|prefix=\"$PREFIX/usr\"|" "$bin/h5pcc.openmpi"
    # h5pcc also names the libraries of a static HDF5 (-lcurl -lcrypto -lsz -lz), which FindHDF5
    # looks up by their development names: link those to the runtime libraries (ours or the
    # machine's)
    mkdir -p "$PREFIX/devlinks/lib"
    local name so
    for name in curl crypto sz z aec; do
        so=$(ls "$lib/lib$name.so."[0-9]* 2>/dev/null | head -1 || true)
        [ -n "$so" ] || so=$(ldconfig -p | awk -v n="lib$name.so." 'index($1, n) == 1 && $NF ~ /^\// {print $NF; exit}' || true)
        if [ -n "$so" ]; then ln -sf "$so" "$PREFIX/devlinks/lib/lib$name.so"; fi
    done
    # the libraries this machine lacks (by soname) go on the library path; the others stay out
    mkdir -p "$PREFIX/lib-missing"
    local have
    have=$(ldconfig -p | awk '{print $1}' | sort -u)
    for so in "$lib"/lib*.so.*; do
        [ -e "$so" ] || continue
        local name
        name=$(basename "$so")
        [[ $name =~ ^lib.*\.so\.[0-9]+$ ]] || continue # sonames only
        echo "$have" | grep -qx "$name" || ln -sf "$so" "$PREFIX/lib-missing/$name"
    done
    echo "gpu_setup: unpacked $(ls "$DEBS"/*.deb | wc -l) packages into $PREFIX; $(ls "$PREFIX/lib-missing" | wc -l) libraries this machine lacks"
}

build() {
    local dir=${1:-build-gpu}
    unpack
    eval "$(print_env)"
    [ -n "${NCCL_ROOT:-}" ] || { echo "gpu_setup: no NCCL: set NCCL_ROOT (PyTorch's nvidia/nccl folder)" >&2; exit 1; }
    # PyTorch's wheel may ship lib/libnccl.so.2 alone; CMake finds it by that name too
    local gen=()
    command -v make >/dev/null || gen=(-G Ninja)
    cmake -S . -B "$dir" "${gen[@]}" -DCRNN_CUDA=ON -DCRNN_WERROR=ON -DNCCL_ROOT="$NCCL_ROOT" \
        -DMPI_C_COMPILER="$PREFIX/usr/bin/mpicc" -DCMAKE_IGNORE_PREFIX_PATH=/usr \
        -DPython3_EXECUTABLE="$(command -v python3)" # the tests' Python: the one with torch and h5py
    cmake --build "$dir" -j"$(nproc)"
}

case "${1:-}" in
download) download ;;
build) shift; build "$@" ;;
env) print_env ;;
unpack) unpack ;;
*) sed -n '2,17p' "$0"; exit 2 ;;
esac
