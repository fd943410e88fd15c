#!/bin/sh
# Install the Debian packages cs needs to build and test, if any is missing
# (Open MPI: the data-parallel cs-train, mpirun -n N cs-train).
# 'deps.sh fuzz': those of make fuzz instead (clang, its sanitizer and
# libFuzzer runtimes, and its OpenMP).
set -e
PKGS="build-essential libopenblas-dev libcsv-dev libzstd-dev check pkg-config mandoc zstd gnuplot-nox python3-zstandard python3-numpy openmpi-bin libopenmpi-dev"
[ "${1:-}" = fuzz ] && PKGS="clang libclang-rt-dev libomp-dev libopenblas-dev libcsv-dev libzstd-dev pkg-config"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
