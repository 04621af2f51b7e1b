#!/usr/bin/env bash
# Installs what simjob needs and is missing on a Debian machine: OpenBLAS, HDF5, oneDNN and pkg-config
# from Debian's packages; h5py and numpy for Python (the tests check files across the language
# boundary with them, and hdf5plugin). Does nothing when everything is there.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if command -v pkg-config >/dev/null 2>&1; then
  pkg-config --exists openblas || missing+=(libopenblas-dev)
  pkg-config --exists hdf5 || missing+=(libhdf5-dev)
else
  missing+=(libopenblas-dev libhdf5-dev)
fi
# oneDNN (int8 products) ships no pkg-config file: its header tells.
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || missing+=(libdnnl-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)

if [ ${#missing[@]} -gt 0 ]; then
  echo "simjob: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c "import h5py, numpy" >/dev/null 2>&1; then
  echo "simjob: installing h5py and numpy for Python"
  # pip where it may install (a virtualenv or pyenv Python); Debian's packages for the system one.
  python3 -m pip install -q h5py numpy 2>/dev/null \
    || { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-h5py python3-numpy >/dev/null; }
fi

# hdf5plugin writes files with the compression filters other tools use (blosc, bzip2), which the
# tests feed simjob to check its message for a filter Debian's HDF5 lacks.
if ! python3 -c "import hdf5plugin" >/dev/null 2>&1; then
  echo "simjob: installing hdf5plugin for Python (test files with blosc/bzip2 chunks)"
  python3 -m pip install -q hdf5plugin 2>/dev/null \
    || { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-hdf5plugin >/dev/null; } || true
fi

# faiss-cpu and hnswlib: the tests load simjob's exported indexes with the tools they are written
# for, and import files those tools wrote.
if ! python3 -c "import faiss, hnswlib" >/dev/null 2>&1; then
  echo "simjob: installing faiss-cpu and hnswlib for Python (the export tests load simjob's files with them)"
  python3 -m pip install -q faiss-cpu hnswlib 2>/dev/null \
    || python3 -m pip install -q --break-system-packages faiss-cpu hnswlib
fi

command -v swift >/dev/null 2>&1 || { echo "simjob: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }
