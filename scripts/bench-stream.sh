#!/bin/sh
# bench-stream.sh - build scripts/bench-stream.c against libcs.a and run it.
#   sh scripts/bench-stream.sh [-n RECORDS] [-r RUNS] [-l LEVEL] [-d DIR]
# Writes and reads sessions through cs_writer/cs_reader; prints medians of
# MB/s of uncompressed payload and the compression ratio. Needs libcs.a
# (make libcs.a). Environment: CC.
set -eu
cd "$(dirname "$0")/.."
[ -f libcs.a ] || { echo "bench-stream: build first: make libcs.a" >&2; exit 1; }
BIN=$(mktemp "${TMPDIR:-/tmp}/bench-stream.XXXXXX")
trap 'rm -f "$BIN"' EXIT
trap 'exit 130' INT TERM
${CC:-cc} -O2 -iquote lib -o "$BIN" scripts/bench-stream.c libcs.a \
	-fopenmp -lzstd -lcsv -lopenblas -lpthread -lm
echo "cpus: $(nproc)"
"$BIN" "$@"
