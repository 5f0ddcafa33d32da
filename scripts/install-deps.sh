#!/usr/bin/env bash
# Installs the Debian packages chunkflow builds with, when any is missing; with --test also
# those only the test suite needs (GoogleTest, Google Benchmark, clang-format for the format
# check, clang and its runtime libraries for the fuzz targets: libFuzzer, ASan and UBSan for
# clang come with libclang-rt-14-dev, which libfuzzer-14-dev's standalone library is not needed
# beside; python3-torch, whose CPU profiler writes the real profiles `chunkflow profile` and
# `calibrate --from-profile` are tested on, and python3-yaml, with which
# tests/traces/make_qwen2_profile.py reads a model file; chromium, the headless browser the HTML
# reports are rendered in by tests/report/browser_test.cc and scripts/report-pictures.sh, and
# python3-pil, with which the tests read its screenshots). zlib1g-dev: .json.gz profiles.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config
          libyaml-cpp-dev libeigen3-dev libboost-dev libfmt-dev nlohmann-json3-dev libcli11-dev
          libopenmpi-dev openmpi-bin zlib1g-dev)
if [ "${1:-}" = "--test" ]; then
  packages+=(libgtest-dev libgmock-dev libbenchmark-dev clang-format clang libclang-rt-14-dev
             python3-torch python3-yaml chromium python3-pil)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "chunkflow: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
