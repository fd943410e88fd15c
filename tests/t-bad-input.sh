# Bad input: every program against damaged files of every kind, the small
# ones in tests/bad/ and the rest damaged here (streams, models and
# checkpoints of a tiny run, 100 MB lines, the public data when present).
# Each case must exit 1 within 30 s (not 0, not a crash, not a usage
# error), name the file and the line or record on stderr, and leave
# nothing behind: every case writes into an empty directory that must stay
# empty. A few documented leniencies are checked to exit 0.
#
#   CS_BIN=DIR       run the programs of DIR, e.g. a sanitizer build
#                    (leaks and memory errors fail a case; about 80 s):
#                    make BUILD=build/sanitize SANITIZE=address,undefined all
#                    CS_BIN=build/sanitize sh tests/t-bad-input.sh
#   CS_VALGRIND=N    run every Nth case under valgrind (leaks and memory
#                    errors fail it); 1: all (minutes), 0: none. Default:
#                    every 50th with the programs of the top directory,
#                    none with CS_BIN; never with a sanitizer build.
. tests/lib.sh
B=tests/bad
if [ -n "${CS_BIN:-}" ]; then
	CS_BIN=$(cd "$CS_BIN" && pwd) || die "CS_BIN '$CS_BIN' is not a directory"
	PATH="$CS_BIN:$PATH"
fi
# A sanitizer report must not pass for the exit status 1 of bad data.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=87"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=88"
# The model programs restart themselves with tuned OpenBLAS settings
# through /proc/self/exe, which valgrind cannot follow: set them here.
export CS_BLAS_REEXEC=1 OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4
vg_every=${CS_VALGRIND:-50}
[ -n "${CS_BIN:-}" ] && vg_every=${CS_VALGRIND:-0}
# valgrind cannot run sanitizer builds (make check SANITIZE=...)
grep -q fsanitize "${CS_BIN:-.}/.build-flags" 2>/dev/null && vg_every=0
command -v valgrind > /dev/null 2>&1 || vg_every=0

cc -std=c11 -O1 -o "$T/forge" $B/forge.c || die "build forge"
F=$T/forge
O=$T/o
ncase=0 nfail=0 nvg=0

# ---------------------------------------------------------------- harness

# run WANT MSG... -- CMD...: CMD exits WANT, its stderr holds every MSG
# (fixed strings), no sanitizer or valgrind report, and after a failure $O
# is empty.
run() {
	want=$1; shift
	msgs=""
	while [ "$1" != "--" ]; do
		msgs="$msgs$1
"
		shift
	done
	shift
	ncase=$((ncase + 1))
	rm -rf "$O" && mkdir "$O"
	limit=30
	if [ "$vg_every" -gt 0 ] && [ $((ncase % vg_every)) -eq 0 ]; then
		limit=600 nvg=$((nvg + 1))
		prog=$(command -v "$1") || die "no program '$1'"
		shift
		set -- valgrind -q --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
			"$prog" "$@"
	fi
	timeout -k 5 $limit "$@" < "${stdin:-/dev/null}" > "$T/stdout" 2> "$T/stderr"
	rc=$?
	why=""
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		why="no answer in $limit s"
	elif [ $rc -ne "$want" ]; then
		why="exit $rc, expected $want"
	elif grep -q 'Sanitizer\|runtime error:\|^==[0-9]*== ' "$T/stderr"; then
		why="sanitizer or valgrind report"
	elif [ "$want" -ne 0 ] && [ -n "$(ls -A "$O")" ]; then
		why="left $(ls -A "$O" | tr '\n' ' ')behind"
	fi
	if [ -z "$why" ]; then
		while IFS= read -r m; do
			[ -z "$m" ] || grep -qF -- "$m" "$T/stderr" || { why="stderr lacks '$m'"; break; }
		done <<EOF
$msgs
EOF
	fi
	if [ -n "$why" ]; then
		nfail=$((nfail + 1))
		echo "not ok: $*: $why" >&2
		head -c 600 "$T/stderr" | sed 's/^/    /' >&2
	fi
	return 0
}
bad() { run 1 "$@"; }
good() { run 0 "$@"; }
# The failures of a group end the test at its end.
group() {
	[ "$nfail" -eq 0 ] || die "$nfail of $ncase cases failed"
	ok "$1 ($ncase cases so far)"
}
# Records of a stream.
records() { cs-cat -i "$1" | awk -F'\t' '$1 == "records" { print $2 }'; }
# edit IN OUT FIELD RECORD VALUE: a copy of stream IN with FIELD of the
# first event (or the sequence) of record RECORD (1-based) set to VALUE,
# through the text form.
edit() {
	cs-cat "$1" | awk -F'\t' -v OFS='\t' -v f="$3" -v r="$4" -v v="$5" '
		NR == 1 { for (i = 1; i <= NF; i++) { split($i, a, ":"); if (a[1] == f) c = i
			  if (a[2] == "seq") s[i] = 1 } print; next }
		$0 == "" { blank = 1; print; next }
		{ k = ""; for (i in s) k = k SUBSEP $i
		  if (blank || k != prev || n == 0) { n++; done = 0 }
		  blank = 0; prev = k
		  if (n == r && !done) { $c = v; done = 1 } print }' | cs-cat -r -o "$2" ||
		die "edit $1"
}

# ------------------------------------------------------------ CSV ingest

ingest="cs-ingest -q --strict -o $O/out"
while IFS='|' read -r file opts msg; do
	bad "$B/$file$msg" -- $ingest $opts $B/$file
done <<'EOF'
empty.csv|-p kaggle|: empty input: no header line
binary.bin|-p kaggle|: no user column 'user_id'
kaggle-binary-rows.csv|-p kaggle|:2: expected 9 columns, got 1
kaggle-columns-short.csv|-p kaggle|:4: expected 9 columns, got 4
kaggle-columns-long.csv|-p kaggle|:5: expected 9 columns, got 10
kaggle-price-comma.csv|-p kaggle|:3: expected 9 columns, got 10
kaggle-quote.csv|-p kaggle|:3: unterminated quoted field
kaggle-quote-inside.csv|-p kaggle|:4: broken quoting
kaggle-price-junk.csv|-p kaggle|:3: bad number 'abc'
kaggle-time-year.csv|-p kaggle|:3: unparsable time '99999-10-01
kaggle-time-negative.csv|-p kaggle|:4: unparsable time '-2019-10-01
kaggle-time-junk.csv|-p kaggle|:2: unparsable time 'yesterday'
kaggle-time-month.csv|-p kaggle|:3: unparsable time '2019-13-01
kaggle-time-hour.csv|-p kaggle|:3: unparsable time '2019-10-01 25:02:00
kaggle-empty-item.csv|-p kaggle|:3: empty item
kaggle-empty-user.csv|-p kaggle|:4: empty user
kaggle-columns-short.csv|-p kaggle -j 1 -M 64k|:4: expected 9 columns, got 4
unix-time-range.csv|-u user -i item -t time -T unix|:3: unparsable time '9223372036854775807'
int64-range.csv|-u user -i item -t time -T unix -k qty:int64|:3: number out of range '99999999999999999999'
int64-range-neg.csv|-u user -i item -t time -T unix -k qty:int64|:3: number out of range '-9223372036854775809'
int64-fraction.csv|-u user -i item -t time -T unix -k qty:int64|:3: not an integer '1.5'
kaggle-price-range.csv|-p kaggle|:3: number out of range '1e39'
kaggle-price-range-neg.csv|-p kaggle|:3: number out of range '-3.5e38'
EOF
bad "$B/kaggle-quote.csv:3:" -- cs-ingest -q --strict -p kaggle -o "$O/out" $B/kaggle-header-only.csv $B/kaggle-quote.csv
stdin=$B/kaggle-columns-short.csv
bad "<stdin>:4:" -- cs-ingest -q -p kaggle --strict -o "$O/out" -
stdin=""
good "$B/kaggle-columns-short.csv:4: expected 9 columns" "1 bad" -- \
	cs-ingest -p kaggle -o "$O/out" $B/kaggle-columns-short.csv
expect_eq "$(records "$O/out")" 3 "sequences of the good rows"
# A header without rows is an empty export: a stream without sequences.
good -- cs-ingest -q --strict -p kaggle -o "$O/out" $B/kaggle-header-only.csv
expect_eq "$(records "$O/out")" 0 "sequences of a header"
# NaN and the infinities are values of a float32 column (cs-ingest(1)).
good -- cs-ingest -q --strict -p kaggle -o "$O/out" $B/kaggle-price-nan.csv
expect_eq "$(cs-cat -H "$O/out" | cut -f9 | tr '\n' ' ')" "nan nan inf -inf inf nan " "prices"
# int64 columns hold the whole range exactly; zeros after a point are no
# fraction.
good -- cs-ingest -q --strict -u user -i item -t time -T unix -k qty:int64 -o "$O/out" $B/int64-full.csv
expect_eq "$(cs-cat -H "$O/out" | cut -f4 | tr '\n' ' ')" \
	"9223372036854775807 -9223372036854775808 9007199254740993 3 " "int64 values"
# Times before 1970 are negative.
good -- cs-ingest -q --strict -u user -i item -t time -T unix -o "$O/out" $B/unix-time-negative.csv
expect_eq "$(cs-cat -H "$O/out" | cut -f3 | tr '\n' ' ')" "-5 -1 " "negative times"
# A NUL byte passes into the stream (strings are bytes); the vocabulary,
# a text file, refuses it.
good -- cs-ingest -q --strict -u user -i item -t time -T unix -o "$O/nul.cseq" $B/nul.csv
mv "$O/nul.cseq" "$T/nul.cseq"
bad "$T/nul.cseq: record 1: a token of field 'item' holds a NUL byte" -- cs-vocab build -q -o "$O/out" "$T/nul.cseq"
group "malformed CSV: file:line, exit 1 with --strict"

# ------------------------------------------------------ 100 MB lines

head -c 100000000 /dev/zero | tr '\0' a > "$T/a100m" || die "100 MB"
big() { { printf "$1"; cat "$T/a100m"; printf "$2"; } > "$T/big"; }
big 'user,item,time\n' '\n'
bad "$T/big:2: expected 3 columns, got 1" -- cs-ingest -q --strict -u user -i item -t time -T unix -o "$O/out" "$T/big"
# A field beyond a stream string's 64 MiB is a bad row; 64 MiB is not.
head -c $((64 << 20)) "$T/a100m" > "$T/a64m" || die "64 MiB"
{ printf 'user,item,time\nu1,a,1\nu1,'; cat "$T/a64m"; printf 'a,2\n'; } > "$T/big"
bad "$T/big:3: field 2 of 67108865 bytes exceeds the 64 MiB limit" -- \
	cs-ingest -q --strict -u user -i item -t time -T unix -o "$O/out" "$T/big"
good "$T/big:3: field 2 of 67108865 bytes" "1 bad" -- \
	cs-ingest -u user -i item -t time -T unix -o "$O/out" "$T/big"
{ printf 'user,item,time\n'; cat "$T/a64m"; printf 'a,b,2\n'; } > "$T/big"
bad "$T/big:2: field 1 of 67108865 bytes" -- \
	cs-ingest -q --strict -u user -i item -t time -T unix -o "$O/out" "$T/big"
{ printf 'user,item,time\nu1,'; cat "$T/a64m"; printf ',2\n'; } > "$T/big"
good -- cs-ingest -q --strict -u user -i item -t time -T unix -o "$O/out" "$T/big"
rm -f "$T/a64m"
big 'user:seq:string\titem:event:string\nu1\t' '\n'
bad "$T/big:2: string too long" -- cs-cat -r -o "$O/out" "$T/big"
big '' '\t1\n'
bad "$T/big:1: expected 'probability<TAB>label'" -- cs-eval --scores "$T/big"
big '# cs-vocab 1\nfield\titem\t4\t0000000000000001\n0\t[PAD]\t0\n1\t[MASK]\t0\n2\t[UNK]\t0\n3\t' '\t1\n'
bad "$T/big:2: fingerprint mismatch" -- cs-vocab info "$T/big"
rm -f "$T/a100m" "$T/big"
group "100 MB lines"

# ------------------------------------------------------- text inputs

while IFS='|' read -r file msg; do
	bad "$B/$file$msg" -- cs-cat -r -o "$O/out" $B/$file
done <<'EOF'
empty.csv|: no header line
binary.bin|:1: NUL byte in line
text-columns.txt|:3: 2 columns, the header has 3
text-int64.txt|:3: invalid int64 'six'
text-int64-range.txt|:3: invalid int64 '9223372036854775808'
text-id-range.txt|:3: invalid id '4294967296'
text-float-range.txt|:3: invalid float32 '1e39'
text-escape.txt|:2: bad escape
text-crlf.txt|:2: carriage return in line
text-nul.txt|:2: NUL byte in line
text-empty-partial.txt|:2: '\N' marks a sequence without events
text-type.txt|:1: unknown type 'strin'
text-field-twice.txt|:1: duplicate field 'user'
text-fingerprint.txt|:1: bad fingerprint '12345'
text-cut.txt|:4: 2 columns, the header has 3 (the last line has no newline: is the file cut short?)
EOF
# A complete last line without a newline is read (cs-cat(1)).
good -- cs-cat -r -o "$O/out" $B/text-no-newline.txt
expect_eq "$(cs-cat "$O/out" | tail -n 1)" "u1	c	1" "a last line without a newline"
while IFS='|' read -r file msg; do
	bad "$B/$file$msg" -- cs-eval --scores $B/$file
done <<'EOF'
empty.csv|: no examples
binary.bin|:1: expected 'probability<TAB>label'
scores-nan.txt|:3: probability nan not in [0, 1]
scores-inf.txt|:2: probability inf not in [0, 1]
scores-range.txt|:2: probability 1.5 not in [0, 1]
scores-label.txt|:2: label is not 0 or 1
scores-columns.txt|:2: label is not 0 or 1
scores-no-tab.txt|:2: expected 'probability<TAB>label'
EOF
group "malformed text: cs-cat -r, cs-eval --scores"

# ------------------------------------------------- a tiny pipeline

# 40 users over 20 items; the last event of every other user is a
# purchase, and some purchases are returned.
awk 'BEGIN { print "user:seq:string\titem:event:string\taction:event:string\ttime:event:int64"
	for (u = 0; u < 40; u++) { n = 4 + u % 5
		for (j = 0; j < n; j++) {
			a = "view"
			if (j == n - 1 && u % 2) a = "purchase"
			if (j == n - 1 && u % 6 == 0) a = "return"
			printf "u%d\tp%d\t%s\t%d\n", u, (u + j) % 20, a, 1000 * u + j } } }' > "$T/events.txt"
cs-cat -r -o "$T/raw.cseq" "$T/events.txt" &&
cs-vocab build -q -F item,action -o "$T/vocab.txt" "$T/raw.cseq" &&
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/enc.cseq" "$T/raw.cseq" &&
cs-mask split -q -o "$T/s" "$T/enc.cseq" &&
cs-mask cloze -q --dupe 2 -o "$T/cl.cseq" "$T/s.train.cseq" &&
cs-mask cloze -q --dupe 2 --mask-field action -o "$T/cla.cseq" "$T/s.train.cseq" &&
cs-mask session -q --vocab "$T/vocab.txt" -o "$T/ses.cseq" "$T/enc.cseq" || die "pipeline"
TRAIN="-q -j 1 -v $T/vocab.txt --hidden 8 --layers 1 --heads 1 --max-len 8 --epochs 1"
cs-train $TRAIN --epochs 2 -o "$T/m.bin" --checkpoint "$T/m.ckpt" "$T/cl.cseq" &&
cs-train $TRAIN --head session --inputs action -o "$T/sess.bin" "$T/ses.cseq" || die "train"
# a checkpoint with an epoch left to run
$F model "$T/m.ckpt" "$T/r.ckpt" train.epoch=1 || die "forge checkpoint"
good -- cs-train $TRAIN --resume "$T/r.ckpt" -o "$O/m.bin" "$T/cl.cseq"
# histories as text
printf 'alice\tp1 p2 p3\n' > "$T/hist.txt"
good -- cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" --text "$T/hist.txt"

while IFS='|' read -r file msg; do
	bad "$B/$file$msg" -- cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" --text -o "$O/out" $B/$file
done <<'EOF'
binary.bin|:1: NUL byte in line
histories-no-tab.txt|:2: expected 'key<TAB>items', found no tab
histories-nul.txt|:1: NUL byte in line
EOF
# An unknown item is skipped with a short message, however long it is.
{ printf 'k\t'; head -c 100000000 /dev/zero | tr '\0' a; printf ' p1\n'; } > "$T/big"
good "$T/big:1: unknown item 'aaaa" "... (100000000 bytes)' skipped" -- \
	cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" --text "$T/big"
[ "$(wc -c < "$T/stderr")" -lt 1000 ] || die "a long unknown item was printed whole"
rm -f "$T/big"
group "histories as text"

# ------------------------------------------------------ vocabularies

# Every program that reads a vocabulary, @ for the file.
vreaders() {
	cat <<EOF
cs-vocab info @
cs-vocab encode -q -v @ -o $O/out $T/raw.cseq
cs-vocab decode -q -v @ -o $O/out $T/enc.cseq
cs-mask session -q --vocab @ -o $O/out $T/enc.cseq
cs-mask returns -q --vocab @ -o $O/out $T/enc.cseq
cs-train $TRAIN -v @ -o $O/m.bin $T/cl.cseq
cs-recommend -q -m $T/m.bin -v @ -o $O/out $T/s.test.cseq
EOF
}
vcase() { # file message
	vreaders > "$T/vreaders"
	while read -r cmd; do
		set -f
		set -- $(echo "$cmd" | sed "s|@|$B/$file|")
		set +f
		bad "$B/$file$msg" -- "$@"
	done < "$T/vreaders"
}
while IFS='|' read -r file msg; do
	vcase
done <<'EOF'
vocab-empty.txt|: empty file: not a vocabulary
binary.bin|:1: NUL byte in line
empty.csv|: empty file
vocab-header-only.txt|:1: no 'field' section
vocab-newer.txt|:1: vocabulary file version 2 is newer
vocab-version-junk.txt|:1: not a vocabulary file
vocab-no-header.txt|:1: not a vocabulary file
vocab-truncated.txt|:16: last line has no newline
vocab-truncated-mid.txt|:6: expected 'id<TAB>token<TAB>count'
vocab-short.txt|:3: section 'item' says 7 ids but has 4
vocab-size.txt|:3: section 'item' says 8 ids but has 7
vocab-size-range.txt|:3: invalid size '4294967303'
vocab-duplicate.txt|:8: duplicate token 'a' in 'item'
vocab-count-negative.txt|:8: invalid count '-3'
vocab-count-junk.txt|:8: invalid count '1x'
vocab-count-range.txt|:8: invalid count '99999999999999999999999'
vocab-order.txt|:8: id 5 out of order (expected 4)
vocab-gap.txt|:9: id 6 out of order (expected 5)
vocab-reserved.txt|:6: id 2 must be the reserved token '[UNK]'
vocab-fingerprint.txt|:3: fingerprint mismatch for 'item'
vocab-fingerprint-junk.txt|:3: invalid fingerprint
vocab-field-twice.txt|:11: duplicate section for 'item'
vocab-crlf.txt|:1: carriage return in line
vocab-columns.txt|:8: expected 'id<TAB>token<TAB>count', got 4 columns
EOF
group "damaged vocabularies"

# ----------------------------------------------------------- streams

# Every program that reads a stream, by the kind of stream it reads, @ for
# the file: raw (strings), enc (ids), cl (Cloze examples), test (a split),
# ses (labelled sessions).
sreaders() {
	cat <<EOF
raw cs-cat @
raw cs-cat -i @
raw cs-cat -j -o $O/out @
raw cs-vocab build -q -o $O/out @
raw cs-vocab encode -q -v $T/vocab.txt -o $O/out @
enc cs-vocab decode -q -v $T/vocab.txt -o $O/out @
enc cs-mask split -q -o $O/p @
enc cs-mask cloze -q -o $O/out @
enc cs-mask session -q --vocab $T/vocab.txt -o $O/out @
enc cs-mask returns -q --vocab $T/vocab.txt -o $O/out @
enc cs-recommend -q -m $T/m.bin -v $T/vocab.txt -o $O/out @
cl cs-train $TRAIN -o $O/m.bin @
test cs-train $TRAIN -o $O/m.bin --valid @ $T/cl.cseq
test cs-eval -q -m $T/m.bin @
ses cs-train $TRAIN --head session --inputs action -o $O/m.bin @
ses cs-eval -q -m $T/sess.bin @
ses cs-recommend -q -m $T/sess.bin -v $T/vocab.txt -o $O/out @
EOF
}
sreaders > "$T/sreaders"
src() {
	case $1 in raw) echo "$T/raw.cseq" ;; enc) echo "$T/enc.cseq" ;; cl) echo "$T/cl.cseq" ;;
		   test) echo "$T/s.test.cseq" ;; ses) echo "$T/ses.cseq" ;; esac
}
# damage HOW IN OUT: a damaged copy of stream IN.
damage() {
	case $1 in
	empty) : > "$3" ;;
	garbage) cp $B/binary.bin "$3" ;;
	csv) cp $B/kaggle-columns-short.csv "$3" ;;
	zcsv) zstd -q -c < $B/kaggle-columns-short.csv > "$3" ;;
	head) head -c 10 "$2" > "$3" ;;
	half) head -c $(($(wc -c < "$2") / 2)) "$2" > "$3" ;;
	tail) head -c $(($(wc -c < "$2") - 4)) "$2" > "$3" ;;
	flip) cp "$2" "$3"; at=$(($(wc -c < "$3") / 2))
	      $F put "$3" $at u8 $(($($F get "$3" $at u8) ^ 0x55)) ;;
	junk) { cat "$2"; echo junk; } > "$3" ;;
	*)	# inside the zstd frame, where its checksum cannot help
		zstd -q -d -c "$2" > "$T/plain" || die "zstd -d"
		r=$((12 + $($F get "$T/plain" 8 u32))) # the first record
		case $1 in
		magic) $F put "$T/plain" 0 u8 88 ;;
		version) $F put "$T/plain" 4 u32 2 ;;
		schema) $F put "$T/plain" 8 u32 4294967295 ;;
		fields) $F put "$T/plain" 12 u32 100000 ;;
		type) $F put "$T/plain" 17 u8 9 ;;
		reclen) $F put "$T/plain" $((r + 1)) u32 2000000000 ;;
		recshort) $F put "$T/plain" $((r + 1)) u32 $(($(wc -c < "$T/plain") - r)) ;;
		events) $F put "$T/plain" $((r + 5)) u32 4294967295 ;;
		tag) $F put "$T/plain" $r u8 88 ;;
		count) $F put "$T/plain" -16 u64 $(($($F get "$T/plain" -16 u64) + 1)) ;;
		notrailer) head -c $(($(wc -c < "$T/plain") - 17)) "$T/plain" > "$T/p2" &&
			   mv "$T/p2" "$T/plain" ;;
		after) printf 'R' >> "$T/plain" ;;
		esac || die "damage $1"
		zstd -q -c "$T/plain" > "$3" || die "zstd"
	esac
}
while IFS='|' read -r how msg1 msg2; do
	for kind in raw enc cl test ses; do
		f=$T/$how.$kind.cseq
		damage "$how" "$(src $kind)" "$f"
		grep "^$kind " "$T/sreaders" > "$T/readers"
		while read -r k cmd; do
			set -f
			set -- $(echo "$cmd" | sed "s|@|$f|")
			set +f
			bad "$f: $msg1" "$msg2" -- "$@"
		done < "$T/readers"
	done
done <<'EOF'
empty|empty input, not a cs sequence stream|
garbage|not a cs sequence stream|
csv|not a cs sequence stream|
zcsv|not a cs sequence stream (bad magic)|
head|truncated stream|
half|truncated stream|
tail|truncated stream|
flip||
junk|corrupt stream|
magic|not a cs sequence stream (bad magic)|
version|stream format version 2 is newer|
schema|corrupt header|
fields|corrupt header|
type|corrupt header|
reclen|record 1: corrupt stream (record of 2000000000 bytes)|
recshort|record 1: truncated stream|
events|record 1: corrupt record|
tag|record 1: corrupt stream (bad record tag|
count|trailer counts|
notrailer|truncated stream: it ends after record |, without its end-of-stream trailer
after|data after the end of the stream|
EOF
# a stream of no records, its trailer cut off
printf 'user:seq:string\titem:event:string\n' | cs-cat -r | zstd -q -d -c > "$T/plain" &&
head -c $(($(wc -c < "$T/plain") - 17)) "$T/plain" | zstd -q -c > "$T/hdr.cseq" || die "header only"
bad "$T/hdr.cseq: truncated stream: it ends after its header, without its end-of-stream trailer" -- \
	cs-cat -o "$O/out" "$T/hdr.cseq"
group "damaged streams"

# --------------------------------- streams that do not fit their vocabulary

# ids beyond the vocabulary the fingerprint names (record 3, or 5 of the
# Cloze examples)
edit "$T/enc.cseq" "$T/id.enc.cseq" item 3 999
edit "$T/cl.cseq" "$T/id.cl.cseq" item 5 4294967295
edit "$T/cl.cseq" "$T/tgt.cl.cseq" target 5 999
edit "$T/s.test.cseq" "$T/id.test.cseq" item 3 999
edit "$T/s.test.cseq" "$T/tgt.test.cseq" target 3 999
edit "$T/ses.cseq" "$T/act.ses.cseq" action 3 999
edit "$T/ses.cseq" "$T/label.ses.cseq" label 3 5
f=$T/id.enc.cseq
bad "$f: record 3: id 999 of 'item' is out of range" -- cs-vocab decode -q -v "$T/vocab.txt" -o "$O/out" "$f"
bad "$f: record 3: item id 999 is beyond the model's" -- \
	cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -o "$O/out" "$f"
for f in id.cl tgt.cl; do
	f=$T/$f.cseq
	bad "$f: record 5: id " "of field '" "is beyond the model's" -- cs-train $TRAIN -o "$O/m.bin" "$f"
done
for f in id.test tgt.test; do
	f=$T/$f.cseq
	bad "$f: record 3: id 999 of field '" -- cs-train $TRAIN -o "$O/m.bin" --valid "$f" "$T/cl.cseq"
	bad "$f: record 3: id 999 of field '" -- cs-eval -q -m "$T/m.bin" "$f"
done
# cs-recommend reads histories, not the targets
f=$T/id.test.cseq
bad "$f: record 3: item id 999 is beyond the model's" -- \
	cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -o "$O/out" "$f"
f=$T/act.ses.cseq
bad "$f: record 3: id 999 of field 'action'" -- \
	cs-train $TRAIN --head session --inputs action -o "$O/m.bin" "$f"
bad "$f: record 3: id 999 of field 'action'" -- cs-eval -q -m "$T/sess.bin" "$f"
bad "$f: record 3: id 999 of field 'action'" -- \
	cs-recommend -q -m "$T/sess.bin" -v "$T/vocab.txt" -o "$O/out" "$f"
f=$T/label.ses.cseq
bad "$f: record 3: label 5 is not 0 or 1" -- cs-train $TRAIN --head session -o "$O/m.bin" "$f"
bad "$f: record 3: label 5 is not 0 or 1" -- cs-eval -q -m "$T/sess.bin" "$f"
# a masked action beyond the action vocabulary
edit "$T/cla.cseq" "$T/fa.cl.cseq" target_action 1 999
f=$T/fa.cl.cseq
bad "$f: record 1: id 999 of field 'target_action'" -- \
	cs-train $TRAIN --inputs action --predict-input action -o "$O/m.bin" "$f"

# a stream encoded with another vocabulary: one item and one action renamed
sed 's/	p7	/	p7x	/; s/	view	/	viewx	/' "$T/vocab.txt" > "$T/v2"
$F vocab "$T/v2" "$T/vocab2.txt" || die "vocab2"
cs-vocab encode -q -v "$T/vocab2.txt" -o "$T/enc2.cseq" "$T/raw.cseq" &&
cs-mask split -q -o "$T/s2" "$T/enc2.cseq" &&
cs-mask cloze -q -o "$T/cl2.cseq" "$T/s2.train.cseq" &&
cs-mask session -q --vocab "$T/vocab2.txt" -o "$T/ses2.cseq" "$T/enc2.cseq" || die "vocab2 pipeline"
bad "$T/enc2.cseq" "fingerprint" -- cs-vocab decode -q -v "$T/vocab.txt" -o "$O/out" "$T/enc2.cseq"
bad "$T/enc2.cseq" "another" -- cs-mask session -q --vocab "$T/vocab.txt" -o "$O/out" "$T/enc2.cseq"
bad "$T/cl2.cseq" "another item vocabulary" -- cs-train $TRAIN -o "$O/m.bin" "$T/cl2.cseq"
bad "$T/s2.test.cseq" "another item vocabulary" -- \
	cs-train $TRAIN -o "$O/m.bin" --valid "$T/s2.test.cseq" "$T/cl.cseq"
bad "$T/s2.test.cseq" "another item vocabulary" -- cs-eval -q -m "$T/m.bin" "$T/s2.test.cseq"
bad "$T/s2.test.cseq" "another" -- \
	cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -o "$O/out" "$T/s2.test.cseq"
bad "$T/ses2.cseq" "another" -- cs-eval -q -m "$T/sess.bin" "$T/ses2.cseq"
bad "$T/ses2.cseq" "another" -- \
	cs-train $TRAIN --head session --inputs action -o "$O/m.bin" "$T/ses2.cseq"
bad "$T/vocab2.txt: not the vocabulary the model" -- \
	cs-recommend -q -m "$T/m.bin" -v "$T/vocab2.txt" -o "$O/out" "$T/s.test.cseq"
bad "another item vocabulary" -- \
	cs-train $TRAIN -v "$T/vocab2.txt" --init "$T/m.bin" -o "$O/m.bin" "$T/cl2.cseq"
group "ids beyond the vocabulary, another vocabulary, bad labels"

# ------------------------------------------------ zero-length sequences

# cs-cat -r writes them ('\N' lines); every reader copes: it passes them
# on, skips them or ranks from nothing, and says so where it counts them.
# zero IN OUT R: IN with a sequence without events before its record R
# (with R's sequence-level values); R 0: nothing but such a sequence.
zero() {
	cs-cat "$1" | awk -F'\t' -v OFS='\t' -v r="$3" '
		BEGIN { only = r == 0 }
		NR == 1 { for (i = 1; i <= NF; i++) { split($i, a, ":"); s[i] = a[2] == "seq" }
			  print; next }
		$0 == "" { blank = 1; if (!only) print; next }
		{ k = ""; for (i in s) if (s[i]) k = k SUBSEP $i
		  if (blank || k != prev || n == 0) n++
		  blank = 0; prev = k
		  if (n == r || (only && !did)) {
			z = $0; $0 = ""; split(z, v, "\t")
			for (i = 1; i <= length(v); i++) $i = s[i] ? v[i] : "\\N"
			print; print ""; $0 = z; r = -1; did = 1
		  }
		  if (!only) print }' | cs-cat -r -o "$2" || die "zero $1"
}
for kind in raw enc cl test ses; do
	zero "$(src $kind)" "$T/z.$kind.cseq" 3
	zero "$(src $kind)" "$T/z0.$kind.cseq" 0
done
expect_eq "$(records "$T/z.raw.cseq") $(records "$T/raw.cseq")" "41 40" "records with an empty one"
expect_eq "$(cs-cat -i "$T/z0.enc.cseq" | awk -F'\t' '$1 != "field" { print $2 }' | tr '\n' ' ')" \
	"1 0 " "a stream of one empty sequence"
while read -r kind cmd; do
	f=$T/z.$kind.cseq
	set -f
	set -- $(echo "$cmd" | sed "s|@|$f|")
	set +f
	good -- "$@"
done < "$T/sreaders"
good "dropped 1" -- cs-mask split -o "$O/p" "$T/z.enc.cseq"
good "1 empty histories were skipped" -- cs-eval -m "$T/m.bin" "$T/z.test.cseq"
cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 2 "$T/z.test.cseq" > "$T/rec" || die "recommend"
expect_eq "$(grep -c '^u2	' "$T/rec")" 4 "recommendations for u2 and its empty twin"
# nothing but an empty sequence: nothing to learn or evaluate
bad "$T/z0.cl.cseq: no sequences to train on" -- cs-train $TRAIN -o "$O/m.bin" "$T/z0.cl.cseq"
bad "$T/z0.test.cseq: no sequences to evaluate" -- cs-eval -q -m "$T/m.bin" "$T/z0.test.cseq"
bad "$T/z0.ses.cseq: no sequences" -- cs-eval -q -m "$T/sess.bin" "$T/z0.ses.cseq"
bad "$T/z0.enc.cseq: the training split is empty" -- cs-mask split -q -o "$O/p" "$T/z0.enc.cseq"
group "zero-length sequences"

# ------------------------------------------------- models and checkpoints

# Every program that reads a model, @ for the file.
mreaders() {
	cat <<EOF
cs-eval -q -m @ $T/s.test.cseq
cs-recommend -q -m @ -v $T/vocab.txt -o $O/out $T/s.test.cseq
cs-train $TRAIN --init @ -o $O/m.bin $T/cl.cseq
cs-train $TRAIN --resume @ -o $O/m.bin $T/cl.cseq
EOF
}
mreaders > "$T/mreaders"
mcase() { # file message
	mf=$1 mm=$2
	while read -r cmd; do
		set -f
		set -- $(echo "$cmd" | sed "s|@|$mf|")
		set +f
		bad "$mf$mm" -- "$@"
	done < "$T/mreaders"
}
mcase "$T/none.bin" ": cannot open: No such file or directory"
mcase "$T" ": not a regular file"
# a FIFO with no writer: refused at once, never waited for
mkfifo "$T/fifo.bin" && mcase "$T/fifo.bin" ": not a regular file"
mcase $B/empty.csv ": not a cs model file (too short)"
mcase $B/binary.bin ": not a cs model file (bad magic)"
mcase "$T/vocab.txt" ": not a cs model file (bad magic)"
mcase "$T/enc.cseq" ": not a cs model file (bad magic)"
n=$(wc -c < "$T/m.bin")
head -c 10 "$T/m.bin" > "$T/head.bin"
mcase "$T/head.bin" ": not a cs model file (too short)"
head -c $((n / 2)) "$T/m.bin" > "$T/half.bin"
mcase "$T/half.bin" ": corrupt model file (checksum mismatch)"
head -c $((n - 4)) "$T/m.bin" > "$T/tail.bin"
mcase "$T/tail.bin" ": corrupt model file (checksum mismatch)"
cp "$T/m.bin" "$T/flip.bin"
$F put "$T/flip.bin" $((n / 2)) u8 $(($($F get "$T/flip.bin" $((n / 2)) u8) ^ 0x55))
mcase "$T/flip.bin" ": corrupt model file (checksum mismatch)"
{ cat "$T/m.bin"; echo junk; } > "$T/junk.bin"
mcase "$T/junk.bin" ": corrupt model file (checksum mismatch)"
cp "$T/m.bin" "$T/magic.bin" && $F put "$T/magic.bin" 0 u8 88
mcase "$T/magic.bin" ": not a cs model file (bad magic)"
# Past the checksum (rewritten): the layout, the hyperparameters, the
# tensors. V*C and L*FF*C beyond 32 bits are refused before anything is
# allocated, with the true sizes (a 32-bit product would be 0).
V=$(awk -F'\t' '$1 == "field" && $2 == "item" { print $3 }' "$T/vocab.txt")
while IFS='|' read -r edits msg; do
	set -f
	$F model "$T/m.bin" "$T/x.bin" $edits || die "forge $edits"
	set +f
	mcase "$T/x.bin" "$msg"
done <<EOF
%version=3|: model file version 3 is newer than this program reads
%nosum|: corrupt model file (checksum mismatch)
%ntensors=5000|: corrupt model file (bad layout)
%ntensors=0|: corrupt model file (bad layout)
t:+wte|: corrupt model file (bad layout)
V=1048576 C=8192|: tensor 'wte' holds $((V * 8)) values, its hyperparameters imply 8589934592
C=4 NH=1 L=1024 FF=1048576 P=8 t:wte=$((V * 4)) t:wpe=32 t:embln_w=4 t:embln_b=4 t:qkv_w=49152 t:qkv_b=12288 t:proj_w=16384 t:proj_b=4096 t:ln1_w=4096 t:ln1_b=4096 t:fc_w=0|: tensor 'fc_w' holds 0 values, its hyperparameters imply 4294967296
V=4294967296|: item count 4294967296 out of range
V=3|: item count 3 out of range
V=abc|: bad hyperparameter V 'abc'
V=-5|: bad hyperparameter V '-5'
L=99999999999999999999|: bad hyperparameter L
-NH|: model file lacks the hyperparameter NH
C=9 NH=2|: 2 heads do not divide hidden size 9
P=0|: zero size in model config
P=70000|: model config beyond limits
arch=gpt2|: not a BERT4Rec or SASRec model (arch 'gpt2')
-arch|: not a BERT4Rec or SASRec model (arch '')
head=foo|: unknown head, pooling or combination
item_vocab=xyz|: bad 'item_vocab' in model file
-item_vocab|: model file lacks 'item_vocab'
NF=9|: bad 'NF' in model file
NF=1|: bad extra input 0 in model file
hidden_dropout=1.5|: dropout probability not in [0, 1)
hidden_dropout=nan|: dropout probability not in [0, 1)
init_range=-1|: init range must be positive
predict=action|: model predicts 'action', not one of its inputs
step=-1|: bad hyperparameter step '-1'
seed=abc|: bad hyperparameter seed 'abc'
nforward=x|: bad hyperparameter nforward 'x'
t:-wte|: tensor 'wte' is missing
t:wpe=3|: tensor 'wpe' holds 3 values, its hyperparameters imply 64
t:wte[5]=nan|: tensor 'wte' holds a NaN at index 5
t:qkv_w[0]=-inf|: tensor 'qkv_w' holds an infinity at index 0
EOF
bad "$T/m.bin: not a training checkpoint" -- cs-train $TRAIN --resume "$T/m.bin" -o "$O/m.bin" "$T/cl.cseq"
# A version 1 file (FNV-1a's checksum, as every file before version 2):
# read as before, the same answers as its version 2 twin; damaged, refused.
$F model "$T/m.bin" "$T/v1.bin" %version=1 || die "forge version 1"
[ "$($F get "$T/m.bin" 4 u32) $($F get "$T/v1.bin" 4 u32)" = "2 1" ] || die "versions"
cmp -s "$T/m.bin" "$T/v1.bin" && die "version 1 file identical"
for v in m v1; do
	good -- cs-recommend -q -m "$T/$v.bin" -v "$T/vocab.txt" -k 5 "$T/s.test.cseq"
	cp "$T/stdout" "$T/$v.rec"
	good -- cs-eval -q -m "$T/$v.bin" "$T/s.test.cseq"
	cp "$T/stdout" "$T/$v.eval"
done
[ -s "$T/m.rec" ] && cmp "$T/m.rec" "$T/v1.rec" && cmp "$T/m.eval" "$T/v1.eval" ||
	die "a version 1 model answers differently"
n=$(wc -c < "$T/v1.bin")
$F put "$T/v1.bin" $((n / 2)) u8 $(($($F get "$T/v1.bin" $((n / 2)) u8) ^ 0x55))
mcase "$T/v1.bin" ": corrupt model file (checksum mismatch)"
group "damaged models"

# A checkpoint holds the options of its run: each is checked as cs-train
# checks its command line.
while IFS='|' read -r edits msg; do
	set -f
	$F model "$T/r.ckpt" "$T/x.ckpt" $edits || die "forge $edits"
	set +f
	bad "$T/x.ckpt$msg" -- cs-train $TRAIN --resume "$T/x.ckpt" -o "$O/m.bin" "$T/cl.cseq"
done <<'EOF'
train.batch=1e30|: bad 'train.batch' in checkpoint ('1e30')
train.batch=-1|: bad 'train.batch' in checkpoint ('-1')
train.batch=0|: bad 'train.batch' in checkpoint ('0')
train.batch=1000000000000|: bad 'train.batch'
train.epochs=1e20|: bad 'train.epochs'
-train.epochs|: checkpoint lacks its training options ('train.epochs')
train.epoch=abc|: bad 'train.epoch'
train.epoch=2|: checkpoint has finished all its 2 epochs: nothing to resume
train.batch_pos=99999999|: checkpoint is 99999999 batches into an epoch of
train.lr=nan|: bad 'train.lr'
train.lr=-1|: bad 'train.lr'
train.beta1=5|: bad 'train.beta1'
train.eps=0|: bad 'train.eps'
train.clip=inf|: bad 'train.clip'
train.weight_decay=-1|: bad 'train.weight_decay'
train.warmup=-100|: bad 'train.warmup'
train.eval_every=1e300|: bad 'train.eval_every'
train.patience=-3|: bad 'train.patience'
train.seed=abc|: bad 'train.seed'
train.freeze=abc|: bad 'train.freeze'
train.examples=abc|: bad 'train.examples'
train.validated=7|: bad 'train.validated'
train.best=nan|: bad 'train.best'
train.best_epoch=5|: bad 'train.best_epoch'
t:adam.m=5|: the optimiser state of the checkpoint does not fit its model
t:-adam.v|: the optimiser state of the checkpoint does not fit its model
t:-adam.m|: not a training checkpoint
t:adam.v[3]=nan|: tensor 'adam.v' holds a NaN at index 3
EOF
group "damaged checkpoints"

# A model within the config limits whose batches do not fit in memory: 4
# channels and a feed-forward width of 2^20 (38 MB of weights) need GiBs
# of activations for a few hundred tokens. Each program says so before
# allocating them, under a limit set here so that the cases do not depend
# on the machine's memory (the default is 3/4 of it).
wide="C=4 NH=1 L=1 FF=1048576 P=65536 t:wte=$((V * 4)) t:wpe=262144 t:embln_w=4 t:embln_b=4
t:qkv_w=48 t:qkv_b=12 t:proj_w=16 t:proj_b=4 t:ln1_w=4 t:ln1_b=4 t:fc_w=4194304 t:fc_b=1048576
t:fc2_w=4194304 t:fc2_b=4 t:ln2_w=4 t:ln2_b=4 t:head_w=16 t:head_b=4 t:headln_w=4 t:headln_b=4"
np=$((5 * V + 9699464))
set -f
$F model "$T/m.bin" "$T/wide.bin" $wide || die "forge wide"
$F model "$T/r.ckpt" "$T/wide.ckpt" $wide t:adam.m=$np t:adam.v=$np || die "forge wide checkpoint"
set +f
export CS_MEM_LIMIT=1G
hp="(hidden 4, ff 1048576, layers 1, heads 1, max length 65536, items $V), over the limit of 1.0 GiB"
f=$T/wide.bin
bad "$f: model needs " "to score batches of " "$hp" -- cs-eval -q -m "$f" "$T/s.test.cseq"
# histories are checked batch by batch, as they come (each thread's
# chunk of a batch, under its share of the limit)
awk 'BEGIN { for (i = 0; i < 300; i++) print "k" i "\tp1 p2 p3 p4 p5 p6 p7" }' > "$T/hist300.txt"
awk 'BEGIN { print "user:seq:string\titem:event:string\taction:event:string"
	for (i = 0; i < 300; i++) for (j = 1; j <= 8; j++) print "k" i "\tp" j "\tview" }' |
	cs-cat -r -o "$T/raw300.cseq" - &&
	cs-vocab encode -q -v "$T/vocab.txt" -o "$T/s300.cseq" "$T/raw300.cseq" ||
	die "300 histories as a stream"
# the threads' copies of the model share the limit: 1.0 GiB on one core
hpr="(hidden 4, ff 1048576, layers 1, heads 1, max length 65536, items $V), over the limit of "
bad "$f: model needs " "to score batches of " "$hpr" -- \
	cs-recommend -q -m "$f" -v "$T/vocab.txt" -o "$O/out" "$T/s300.cseq"
bad "$f: model needs " "to score batches of " "sequences of up to 8 events" "$hpr" -- \
	cs-recommend -q -m "$f" -v "$T/vocab.txt" --text -o "$O/out" "$T/hist300.txt"
bad "$f: model needs " "to train on batches of " "$hp" -- cs-train $TRAIN --init "$f" -o "$O/m.bin" "$T/cl.cseq"
bad "$f: model needs " "to train on batches of " -- \
	cs-train $TRAIN --head session --init "$f" -o "$O/m.bin" "$T/ses.cseq"
bad "$T/wide.ckpt: model needs " "to train on batches of " "$hp" -- \
	cs-train $TRAIN --resume "$T/wide.ckpt" -o "$O/m.bin" "$T/cl.cseq"
# the small model fits under the same limit
good -- cs-eval -q -m "$T/m.bin" "$T/s.test.cseq"
export CS_MEM_LIMIT=lots
run 2 "invalid size 'lots' in CS_MEM_LIMIT" -- cs-eval -q -m "$T/m.bin" "$T/s.test.cseq"
unset CS_MEM_LIMIT
rm -f "$T/wide.bin" "$T/wide.ckpt"
group "models whose batches do not fit in memory"

# ------------------------------------- hardening, round two (issue 12)

# 1. Finite weights that overflow in the forward pass give NaN scores:
# an error naming the model, never HR 1.0 or an empty answer.
$F model "$T/m.bin" "$T/ovf.bin" 't:embln_w[0]=3e38' 't:embln_w[1]=-3e38' || die "forge ovf"
$F model "$T/sess.bin" "$T/ovfs.bin" 't:embln_w[0]=3e38' 't:embln_w[1]=-3e38' || die "forge ovfs"
f=$T/ovf.bin
bad "$f: model gives a non-finite" -- cs-eval -q -m "$f" "$T/s.test.cseq"
bad "$f: model gives a non-finite" -- cs-eval -q --json -m "$f" "$T/s.test.cseq"
bad "$f: model gives a non-finite" -- \
	cs-recommend -q -m "$f" -v "$T/vocab.txt" --text -o "$O/out" "$T/hist300.txt"
bad "$f: model gives a non-finite" -- \
	cs-recommend -q -m "$f" -v "$T/vocab.txt" -o "$O/out" "$T/s.test.cseq"
f=$T/ovfs.bin
bad "$f: model gives a non-finite probability" -- cs-eval -q -m "$f" "$T/ses.cseq"
bad "$f: model gives a non-finite probability" -- \
	cs-recommend -q -m "$f" -v "$T/vocab.txt" -o "$O/out" "$T/ses.cseq"

# 2. Keys and tokens are printed escaped as in cs-cat's text form: a key
# with a tab, newline or NUL cannot forge or cut an output line.
printf 'user:seq:string\titem:event:string\taction:event:string\n' > "$T/evil.txt"
printf 'evil\\n999\\t1\\tFAKE\\t9\tp1\tview\nevil\\n999\\t1\\tFAKE\\t9\tp2\tpurchase\n' >> "$T/evil.txt"
printf 'a\\x00b\tp3\tview\na\\x00b\tp4\tpurchase\n' >> "$T/evil.txt"
cs-cat -r -o "$T/evil.cseq" "$T/evil.txt" &&
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/evil.enc.cseq" "$T/evil.cseq" &&
cs-mask session -q --vocab "$T/vocab.txt" -o "$T/evil.ses.cseq" "$T/evil.enc.cseq" ||
	die "evil keys"
good -- cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 3 "$T/evil.enc.cseq"
expect_eq "$(awk -F'\t' 'NF != 4' "$T/stdout" | wc -l)" 0 "lines with other than 4 columns"
expect_eq "$(cut -f1 "$T/stdout" | sort | uniq -c | awk '{ print $1, $2 }' | tr '\n' ' ')" \
	'3 a\x00b 3 evil\n999\t1\tFAKE\t9 ' "escaped keys"
good -- cs-recommend -q -m "$T/sess.bin" -v "$T/vocab.txt" "$T/evil.ses.cseq"
expect_eq "$(awk -F'\t' 'NF != 2' "$T/stdout" | wc -l)" 0 "session lines with other than 2 columns"
expect_eq "$(cut -f1 "$T/stdout" | tr '\n' ' ')" 'evil\n999\t1\tFAKE\t9 a\x00b ' "escaped session keys"

# 3. A log that cannot be written fails the run.
bad "/dev/full: write error: No space left on device" -- \
	cs-train $TRAIN --valid "$T/s.test.cseq" --log /dev/full -o "$O/m.bin" "$T/cl.cseq"
# JSON lines have no header: the first validation fails, the model and
# its checkpoint stay
test_must_fail cs-train $TRAIN --valid "$T/s.test.cseq" --log-json --log /dev/full \
	-o "$T/mj.bin" "$T/cl.cseq"
stderr_has "/dev/full: write error: No space left on device"

# 4, 5. Two outputs that are one file; conflicting or meaningless options.
run 2 "the train and valid splits would both go to '$O/a'" -- \
	cs-mask split -q --train "$O/a" --valid "$O/a" --test "$O/b" "$T/enc.cseq"
run 2 "would both go to" -- cs-mask split -q -o "$O/p" --test "$O/p.train.cseq" "$T/enc.cseq"
run 2 "-o and --checkpoint name the same file" -- \
	cs-train $TRAIN --checkpoint "$O/m.bin" -o "$O/m.bin" "$T/cl.cseq"
run 2 "-o and --log name the same file" -- \
	cs-train $TRAIN --log "$O/m.bin" -o "$O/./m.bin" "$T/cl.cseq"
run 2 "--pool is for the session head" -- cs-train $TRAIN --pool mean -o "$O/m.bin" "$T/cl.cseq"
run 2 "three different splits" -- cs-mask split -q --loo --random 0.1,0.1 -o "$O/p" "$T/enc.cseq"
run 2 "three different splits" -- cs-mask split -q --time-cut 1000 --loo -o "$O/p" "$T/enc.cseq"
run 2 "--init and --resume" -- \
	cs-train $TRAIN --init "$T/m.bin" --resume "$T/r.ckpt" -o "$O/m.bin" "$T/cl.cseq"
run 2 "empty cut-off in --k '5,,10'" -- cs-eval -q -k 5,,10 -m "$T/m.bin" "$T/s.test.cseq"
run 2 "empty cut-off" -- cs-eval -q -k 5, -m "$T/m.bin" "$T/s.test.cseq"

# 6. More negatives than items: each history ranks against all it has not
# seen, at once (it hung).
good -- cs-eval -q -n 1000000 -m "$T/m.bin" "$T/s.test.cseq"
expect_eq "$(cs-eval -q -n 1000000 -m "$T/m.bin" "$T/s.test.cseq" | head -n 1)" \
	"metric	full	sampled_1000000_pop" "header"

# 7. Usage errors exit 2, bad environment values too.
run 2 "--predict-input action needs the cloze head and 'action' among the --inputs" -- \
	cs-train $TRAIN --predict-input action -o "$O/m.bin" "$T/cla.cseq"
export CS_KERNEL=bogus
run 2 "invalid value 'bogus' in CS_KERNEL" -- cs-eval -q -m "$T/m.bin" "$T/s.test.cseq"
run 2 "invalid value 'bogus' in CS_KERNEL" -- \
	cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -o "$O/out" "$T/s.test.cseq"
run 2 "invalid value 'bogus' in CS_KERNEL" -- cs-train $TRAIN -o "$O/m.bin" "$T/cl.cseq"
unset CS_KERNEL

# 8. Outputs that cannot be written fail before any work.
run 2 "empty output file name" -- cs-train $TRAIN -o '' "$T/cl.cseq"
bad "$O/missing/m.bin: cannot create: directory '$O/missing': No such file or directory" -- \
	cs-train $TRAIN -o "$O/missing/m.bin" /dev/null
bad "$O/missing/c: cannot create" -- cs-train $TRAIN --checkpoint "$O/missing/c" -o "$O/m.bin" /dev/null
bad "$O/missing/log: cannot create" -- cs-train $TRAIN --log "$O/missing/log" -o "$O/m.bin" /dev/null
bad "$O/missing/v: cannot create" -- cs-vocab build -q -o "$O/missing/v" /dev/null
bad "$O/missing/p.train.cseq: cannot create" -- cs-mask split -q -o "$O/missing/p" /dev/null
bad "$O/missing/o: cannot create" -- cs-mask cloze -q -o "$O/missing/o" /dev/null
bad "$O/missing/o: cannot create" -- cs-ingest -q -p kaggle -o "$O/missing/o" /dev/null
bad "$O/missing/o: cannot create" -- cs-cat -r -o "$O/missing/o" /dev/null

# 9. An empty history as text (UBSan: memcpy from NULL).
printf 'k\t\nk2\tp1 p2\n' > "$T/hist-empty.txt"
good -- cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 2 --text "$T/hist-empty.txt"
expect_eq "$(cut -f1 "$T/stdout" | tr '\n' ' ')" "k k k2 k2 " "an empty history ranked"

# 10. The memory limit comes before the parameters are allocated: their
# 400 MiB with gradients and Adam moments are refused at once (they were
# allocated and initialised, 4 s, before the batches were found too big),
# and 580 GiB too (that was "out of memory").
export CS_MEM_LIMIT=256M
bad "MiB for its parameters, gradients and optimiser state (hidden 1024" \
	"over the limit of 256 MiB" -- \
	cs-train $TRAIN --hidden 1024 --heads 1 --layers 2 -o "$O/m.bin" "$T/cl.cseq"
export CS_MEM_LIMIT=1G
bad "GiB for its parameters, gradients and optimiser state" -- \
	cs-train $TRAIN --hidden 16384 --heads 1 --layers 12 -o "$O/m.bin" "$T/cl.cseq"
unset CS_MEM_LIMIT

# 11. A UTF-8 byte-order mark is no part of the first name; a record may
# not claim more bytes than its events can hold (a 1 GiB zstd bomb of 40
# KB); a model file's magic is checked before it is read (a 1 TiB file).
{ printf '\357\273\277'; cat "$T/events.txt"; } > "$T/bom.txt"
good -- cs-cat -r -o "$O/bom.cseq" "$T/bom.txt"
expect_eq "$(cs-cat -i "$O/bom.cseq" | awk -F'\t' '$1 == "field" { print $2; exit }')" user "first field"
zstd -q -d -c "$T/enc.cseq" > "$T/plain" || die "zstd -d"
r=$((12 + $($F get "$T/plain" 8 u32)))
$F put "$T/plain" $((r + 1)) u32 1073741824 || die "put"
{ cat "$T/plain"; head -c 1073741824 /dev/zero; } | zstd -q -c > "$T/bomb.cseq" || die "bomb"
bad "$T/bomb.cseq: record 1: corrupt stream (record of 1073741824 bytes, more than" -- \
	cs-cat -o "$O/out" "$T/bomb.cseq"
rm -f "$T/plain" "$T/bomb.cseq"
{ head -c 4096 $B/kaggle-columns-short.csv; } > "$T/huge.bin" && truncate -s 1T "$T/huge.bin" ||
	die "sparse file"
bad "$T/huge.bin: not a cs model file (bad magic)" -- cs-eval -q -m "$T/huge.bin" "$T/s.test.cseq"
rm -f "$T/huge.bin"
group "hardening, round two"

# ------------------------------------------------- the public data, damaged

K=$DATA/kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
R=$DATA/online-retail/OnlineRetail_head10k.csv
P=$DATA/diginetica/train-purchases.csv
Vw=$DATA/diginetica/sample_train-item-views.csv
if [ -f "$K" ] && [ -f "$R" ] && [ -f "$P" ] && [ -f "$Vw" ]; then
	# cut in the middle of line 5000; a byte changed in the time of line 3000
	head -n 5000 "$K" > "$T/k.csv"
	last=$(tail -n 1 "$T/k.csv" | wc -c)
	head -c $(($(wc -c < "$T/k.csv") - last / 2)) "$T/k.csv" > "$T/kcut.csv"
	bad "$T/kcut.csv:5000: expected 9 columns" -- cs-ingest -q --strict -p kaggle -o "$O/out" "$T/kcut.csv"
	awk 'NR == 3000 { $0 = "X" substr($0, 2) } { print }' "$T/k.csv" > "$T/kflip.csv"
	bad "$T/kflip.csv:3000: unparsable time 'X019-10-01" -- \
		cs-ingest -q --strict -p kaggle --by session -o "$O/out" "$T/kflip.csv"
	# without --strict the other 4999 rows are kept
	good "$T/kflip.csv:3000: unparsable time" "4999 rows read, 1 bad" -- \
		cs-ingest -p kaggle -o "$O/out" "$T/kflip.csv"
	# a day that is no date in the retail export's M/D/YYYY
	l=$(awk -F, 'NR >= 1500 && NF == 8 && $7 != "" { print NR; exit }' "$R")
	sed "${l}s|[0-9]*/[0-9]*/2010 |13/45/2010 |" "$R" > "$T/r.csv"
	bad "$T/r.csv:$l: unparsable time '13/45/2010" -- cs-ingest -q --strict -p retail -o "$O/out" "$T/r.csv"
	# the purchases file cut in the middle of a line, named in the message
	head -n 300 "$P" > "$T/p.csv"
	last=$(tail -n 1 "$T/p.csv" | wc -c)
	head -c $(($(wc -c < "$T/p.csv") - last / 2)) "$T/p.csv" > "$T/pcut.csv"
	mv "$T/pcut.csv" "$T/p.csv"
	bad "$T/p.csv:300: expected 6 columns" -- \
		cs-ingest -q --strict -p diginetica --purchases "$T/p.csv" -o "$O/out" "$Vw"
	# a stream of real sessions, cut and flipped
	cs-ingest -q -p kaggle --by session -o "$T/k.cseq" "$T/k.csv" || die "ingest kaggle"
	n=$(wc -c < "$T/k.cseq")
	head -c $((n * 2 / 3)) "$T/k.cseq" > "$T/kcut.cseq"
	bad "$T/kcut.cseq: " "truncated stream" -- cs-vocab build -q -o "$O/out" "$T/kcut.cseq"
	cp "$T/k.cseq" "$T/kflip.cseq"
	$F put "$T/kflip.cseq" $((n / 3)) u8 $(($($F get "$T/kflip.cseq" $((n / 3)) u8) ^ 0x55))
	bad "$T/kflip.cseq: " -- cs-cat -o "$O/out" "$T/kflip.cseq"
	group "the public data, damaged"
else
	echo "skip: the public data sets are missing"
fi
[ "$nvg" -eq 0 ] || echo "$nvg of $ncase cases ran under valgrind"
