#!/bin/sh
# Run every unit test binary (tests/check_*) and every shell test
# (tests/t-*.sh), then lint the man pages. Prints "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
pass=0 fail=0 failed=""
run() {
	name=$1; shift
	if "$@" >tests/tmp/"$name".log 2>&1; then
		pass=$((pass + 1)); echo "PASS: $name"
	else
		fail=$((fail + 1)); failed="$failed $name"; echo "FAIL: $name"
		sed 's/^/    /' tests/tmp/"$name".log | tail -40
	fi
}
mkdir -p tests/tmp
for t in tests/check_*; do
	case $t in *.c|*.h|*.o) continue ;; esac
	[ -x "$t" ] || continue
	run "$(basename "$t")" "$t"
done
for t in tests/t-*.sh; do
	[ -f "$t" ] || continue
	run "$(basename "$t" .sh)" sh "$t"
done
run mandoc-lint sh -c 'mandoc -Tlint -Wwarning man/*.[15]'
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
