#!/bin/sh
# Run every unit test binary (tests/check_*), the fuzz targets over their
# seeds and regression inputs (tests/fuzz/replay-*) and every shell test
# (tests/t-*.sh), then lint the man pages. Prints "N passed, N failed".
#
#   run.sh             all of it, with the binaries of the top directory
#   run.sh --unit DIR  only the fast tests (unit tests and replays) built
#                      under DIR (make check-sanitize)
cd "$(dirname "$0")/.." || exit 1
unit=""
if [ "${1:-}" = --unit ]; then
	unit=${2:?run.sh: --unit needs a directory}
fi
# Sanitizer builds: any report fails the test; leaks are found at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
top=${unit:+$unit/}
# Sanitized tests run several times slower: give Check's timeouts room.
if grep -q fsanitize "${top}.build-flags" 2>/dev/null; then
	export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
fi
pass=0 fail=0 failed=""
run() {
	name=$1; shift
	if "$@" >"$logs/$name.log" 2>&1; then
		pass=$((pass + 1)); echo "PASS: $name"
	else
		fail=$((fail + 1)); failed="$failed $name"; echo "FAIL: $name"
		sed 's/^/    /' "$logs/$name.log" | tail -40
	fi
}
logs=${top}tests/tmp
mkdir -p "$logs"
for t in "$top"tests/check_*; do
	case $t in *.c|*.h|*.o) continue ;; esac
	[ -x "$t" ] || continue
	run "$(basename "$t")" "$t"
done
for t in "$top"tests/fuzz/replay-*; do
	[ -x "$t" ] || continue
	n=${t##*/replay-}
	run "fuzz-$n" "$t" tests/fuzz/corpus/"$n" tests/fuzz/regress/"$n"
done
if [ -z "$unit" ]; then
	for t in tests/t-*.sh; do
		[ -f "$t" ] || continue
		run "$(basename "$t" .sh)" sh "$t"
	done
	run mandoc-lint sh -c 'mandoc -Tlint -Wwarning man/*.[157]'
fi
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
