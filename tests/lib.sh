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
# Wait up to 30 s for FILE to appear, not empty (a checkpoint mid-run); 1 if it does not.
wait_file() {
	_n=0
	until [ -s "$1" ]; do
		_n=$((_n + 1))
		[ $_n -lt 1500 ] || return 1
		sleep 0.02
	done
}
need_data() { [ -f "$DATA/$1" ] || { echo "skip: $DATA/$1 missing"; exit 0; }; }
# The planted-pattern catalogue of the model tests: 600 users over 120
# items, each history walking the catalogue in steps of one from a start
# that depends on the user (so the next item is implied); events.txt,
# raw.cseq, vocab.txt, enc.cseq and the leave-one-out split s.* in $T.
walks() {
	awk 'BEGIN {
		srand(7); print "user:seq:string\titem:event:string\ttime:event:int64"
		for (u = 0; u < 600; u++) {
			s = int(rand() * 120); n = 6 + int(rand() * 10)
			for (j = 0; j < n; j++) printf "u%d\tp%d\t%d\n", u, (s + j) % 120, 1000 * u + j
		}
	}' > "$T/events.txt"
	cs-cat -r -o "$T/raw.cseq" "$T/events.txt" || die "cs-cat -r"
	cs-vocab build -q -o "$T/vocab.txt" "$T/raw.cseq" || die "vocab build"
	cs-vocab encode -q -v "$T/vocab.txt" -o "$T/enc.cseq" "$T/raw.cseq" || die "encode"
	cs-mask split -q -o "$T/s" "$T/enc.cseq" || die "split"
}
