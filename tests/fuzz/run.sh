#!/bin/sh
# Run fuzz targets built by make fuzz-build: run.sh DIR SECONDS TARGET...
# Each runs for SECONDS on its seeds (tests/fuzz/corpus/TARGET), the
# inputs that once crashed it (tests/fuzz/regress/TARGET) and the corpus
# it grew before (DIR/corpus/TARGET). A crash, a leak, a hang of 20 s or
# a single allocation over 512 MiB is written to DIR/crash-TARGET-* and
# makes the run fail. Prints the executions of each.
dir=$1 secs=$2
shift 2
cd "$(dirname "$0")/../.." || exit 1
fail=""
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# The targets write files: on tmpfs, fsync and rename cost nothing. A
# crash leaves its files behind, so all go in one directory removed here.
base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
TMPDIR=$(mktemp -d "$base/cs-fuzz-run.XXXXXX") || exit 1
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
trap 'exit 130' INT TERM
for t in "$@"; do
	mkdir -p "$dir/corpus/$t"
	dict=""
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	log=$dir/fuzz-$t.log
	echo "fuzz: $t for ${secs}s (log $log)"
	# the regression inputs run first, under the same limits
	"$dir/tests/fuzz/fuzz-$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 \
		-malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$dir/crash-$t-" \
		$dict "$dir/corpus/$t" "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz: $t: ${execs:-?} executions, corpus $(ls "$dir/corpus/$t" | wc -l) files, exit $rc"
	if [ $rc -ne 0 ]; then
		fail="$fail $t"
		grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$log" | head -5
	fi
done
if [ -n "$fail" ]; then
	echo "fuzz: crashes in:$fail; add each input to tests/fuzz/regress/TARGET/ once fixed"
	exit 1
fi
