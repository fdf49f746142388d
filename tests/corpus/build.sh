#!/usr/bin/env bash
# Rebuilds the third-party programs of the corpus from their pinned sources (needs the network:
# crates.io, and the upstream git repositories for zlib and cmark). CI never runs this: it uses
# the committed .wasm files. Tools: Debian bookworm's clang 14 + wasi-libc, the pinned nightly
# (kernel/rust-toolchain.toml) with the wasm32-wasip1 target, and wabt's wasm-strip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
toolchain=+nightly-2026-10-30

# Rust programs from crates.io, exactly as locked by their authors.
for spec in "hexyl 0.17.0 hexyl" "ripgrep 15.2.0 rg"; do
    set -- $spec
    cargo $toolchain install --locked --target wasm32-wasip1 --version "$2" --root "$work/$1" "$1"
    cp "$work/$1/bin/$3.wasm" "$here/$3/$3.wasm"
    # Custom sections only (debug info, names): code and data are untouched.
    wasm-strip "$here/$3/$3.wasm"
done
# comrak without its default syntect feature (which needs the Oniguruma C library).
cargo $toolchain install --locked --no-default-features --features cli --target wasm32-wasip1 --version 0.59.0 \
    --root "$work/comrak" comrak
cp "$work/comrak/bin/comrak.wasm" "$here/comrak/comrak.wasm"
wasm-strip "$here/comrak/comrak.wasm"

# zlib 1.3.1's minigzip (C).
git clone -q --depth 1 --branch v1.3.1 https://github.com/madler/zlib "$work/zlib"
(cd "$work/zlib" && clang --target=wasm32-wasi -O2 -D_WASI_EMULATED_SIGNAL -o "$here/minigzip/minigzip.wasm" \
    test/minigzip.c adler32.c compress.c crc32.c deflate.c gzclose.c gzlib.c gzread.c gzwrite.c \
    infback.c inffast.c inflate.c inftrees.c trees.c uncompr.c zutil.c -lwasi-emulated-signal)

# cmark 0.31.2 (C): the two headers CMake would generate are written by hand.
git clone -q --depth 1 --branch 0.31.2 https://github.com/commonmark/cmark "$work/cmark"
mkdir -p "$work/cmark/src/gen"
printf '#ifndef CMARK_VERSION_H\n#define CMARK_VERSION_H\n#define CMARK_VERSION ((0 << 16) | (31 << 8) | 2)\n#define CMARK_VERSION_STRING "0.31.2"\n#endif\n' \
    > "$work/cmark/src/gen/cmark_version.h"
printf '#ifndef CMARK_EXPORT_H\n#define CMARK_EXPORT_H\n#define CMARK_EXPORT\n#endif\n' > "$work/cmark/src/gen/cmark_export.h"
(cd "$work/cmark/src" && clang --target=wasm32-wasi -O2 -std=c99 -Igen -I. -o "$here/cmark/cmark.wasm" \
    blocks.c buffer.c cmark.c cmark_ctype.c commonmark.c houdini_href_e.c houdini_html_e.c houdini_html_u.c \
    html.c inlines.c iterator.c latex.c main.c man.c node.c references.c render.c scanners.c utf8.c xml.c)

# QuickJS-ng 0.16.2 (C): the sources of its CMake target qjs_exe, with its WASI definitions.
git clone -q --depth 1 --branch v0.16.2 https://github.com/quickjs-ng/quickjs "$work/qjs"
(cd "$work/qjs" && clang --target=wasm32-wasi -O2 -D_GNU_SOURCE -DQJS_BUILD_LIBC -D_WASI_EMULATED_PROCESS_CLOCKS \
    -D_WASI_EMULATED_SIGNAL -I. -o "$here/qjs/qjs.wasm" gen/repl.c gen/standalone.c qjs.c dtoa.c libregexp.c \
    libunicode.c quickjs.c quickjs-libc.c -lm -lwasi-emulated-process-clocks -lwasi-emulated-signal \
    -Wl,-z,stack-size=8388608)

# Lua 5.4.8: see lua/ORIGIN.md (built once for the fuel-trap reproducer; not rebuilt here).
sha256sum "$here"/*/*.wasm
