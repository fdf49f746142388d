#!/usr/bin/env bash
# Builds CoreMark (vendored here from github.com/eembc/coremark at d5fad6b, its POSIX port) for
# WASI with Debian bookworm's clang 14 + wasi-libc. CI uses the committed coremark.wasm; the
# bench builds the native build for the same sources itself (`native` below).
# Usage: build.sh [wasm|native OUT|musl OUT] (musl: a static PIE for Keel's native programs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
srcs="core_list_join.c core_main.c core_matrix.c core_state.c core_util.c posix/core_portme.c"
flags='-O2 -Iposix -I. -DFLAGS_STR="-O2" -DPERFORMANCE_RUN=1 -DUSE_CLOCK=0 -DHAS_TIME_H=1 -DMULTITHREAD=1 -DUSE_PTHREAD=0 -DUSE_FORK=0 -DUSE_SOCKET=0'
cd "$here"
case "${1:-wasm}" in
    wasm) clang --target=wasm32-wasi $flags -D_WASI_EMULATED_PROCESS_CLOCKS -o coremark.wasm $srcs -lwasi-emulated-process-clocks ;;
    native) gcc $flags -o "$2" $srcs -lrt ;;
    musl) "$here/../../apps/native/keel-cc" $flags -o "$2" $srcs ;;
esac
