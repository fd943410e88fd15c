# Shell test helpers, sourced by tests/t-*.sh (run from the top directory).
set -u
TOP=$(pwd)
PATH="$TOP:$PATH"
DATA=${CS_DATA:-$TOP/../shared/data}
T=$(mktemp -d "${TMPDIR:-/tmp}/cs-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
ntest=0
die() { echo "not ok: $*" >&2; exit 1; }
ok() { ntest=$((ntest + 1)); echo "ok $ntest - $*"; }
# Run a command that must fail with status 1 (not a crash, not a usage error).
test_must_fail() {
	"$@" 2>"$T/stderr"; rc=$?
	if [ $rc -ne 1 ]; then
		cat "$T/stderr" >&2
		die "expected exit 1, got $rc: $*"
	fi
}
# Run a command that must fail with a usage error (status 2).
test_must_fail_usage() { "$@" 2>/dev/null; [ $? -eq 2 ] || die "expected usage error: $*"; }
# The last command's stderr must contain a string.
stderr_has() { grep -qF -- "$1" "$T/stderr" || { cat "$T/stderr" >&2; die "stderr lacks '$1'"; }; }
# info STREAM KEY: a value of cs-cat --info (records, events, ...).
info() { cs-cat --info "$1" | awk -F'\t' -v k="$2" '$1 == k { print $2 }'; }
expect_eq() { [ "$1" = "$2" ] || die "$3: expected '$2', got '$1'"; }
need_data() { [ -f "$DATA/$1" ] || { echo "skip: $DATA/$1 missing"; exit 0; }; }
