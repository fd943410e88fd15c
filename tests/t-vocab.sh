#!/bin/sh
# cs-vocab on the BERT4Rec Beauty data: build, k-core, encode/decode, errors.
. tests/lib.sh
need_data amazon-beauty/beauty_bert4rec.txt
RAW=$DATA/amazon-beauty/beauty_bert4rec.txt

# the stream: from cs-ingest when it is built, else from text with cs-cat
if [ -x ./cs-ingest ]; then
	cs-ingest -q -p pairs -o "$T/b.cseq" "$RAW" || die "cs-ingest failed"
else
	awk 'BEGIN { print "user:seq:string\titem:event:string" } { print $1 "\t" $2 }' "$RAW" |
		cs-cat -r -o "$T/b.cseq" || die "cs-cat -r failed"
fi
cs-cat "$T/b.cseq" >"$T/b.txt" || die "cs-cat failed"

cs-vocab build -o "$T/v.txt" "$T/b.cseq" 2>"$T/stderr" || die "build failed"
stderr_has "item: 54542 tokens + 3 reserved"
expect_eq "$(head -1 "$T/v.txt")" "# cs-vocab 1" "header line"
expect_eq "$(grep '^field' "$T/v.txt" | cut -f1-3)" "field	item	54545" "section line"
expect_eq "$(grep -c '^[0-9]' "$T/v.txt")" 54545 "id lines"
# every count and the order, against sort(1): count descending, ties by bytes
awk '{ print $2 }' "$RAW" | LC_ALL=C sort | uniq -c | awk '{ print $2 "\t" $1 }' |
	LC_ALL=C sort -t "$(printf '\t')" -k2,2nr -k1,1 | awk '{ print NR + 2 "\t" $0 }' >"$T/want"
grep '^[0-9]' "$T/v.txt" | tail -n +4 | cmp - "$T/want" || die "ids or counts differ from sort(1)"
cs-vocab build -q "$T/b.cseq" | cmp - "$T/v.txt" || die "a second build differs"
ok "build: 54542 items + 3 reserved, ids and counts as sort(1) gives"

cs-vocab build -q -s 100 -o "$T/v100.txt" "$T/b.cseq" || die "build -s failed"
expect_eq "$(grep '^field' "$T/v100.txt" | cut -f3)" 103 "size with --max-size 100"
head -n 106 "$T/v.txt" | tail -n 100 | cut -f2,3 >"$T/top"
grep '^[0-9]' "$T/v100.txt" | tail -n 100 | cut -f2,3 | cmp - "$T/top" || die "max-size kept others"
cs-vocab build -q -c 50 -o "$T/v50.txt" "$T/b.cseq" || die "build -c failed"
n50=$(awk -F '\t' '/^[0-9]/ && $1 >= 3 && $3 >= 50' "$T/v.txt" | wc -l)
expect_eq "$(grep '^field' "$T/v50.txt" | cut -f3)" $((n50 + 3)) "size with --min-count 50"
awk -F '\t' '/^[0-9]/ && $1 >= 3 && $3 < 50 { exit 1 }' "$T/v50.txt" || die "min-count kept a rare token"
ok "--max-size and --min-count"

# the 5-core: the numbers of the S3-Rec/ICLRec Beauty set (see data README)
cs-vocab build -k 5 -o "$T/v5.txt" "$T/b.cseq" 2>"$T/stderr" || die "build -k failed"
stderr_has "5-core: 22363 of 40226 sequences, 198502 of 353962 events"
stderr_has "item: 12101 tokens + 3 reserved"
expect_eq "$(awk -F '\t' '/^[0-9]/ && $1 >= 3 { s += $3 } END { print s }' "$T/v5.txt")" 198502 "core events"
ok "k-core 5: 22363 users, 12101 items, 198502 events"

# encode -> decode gives back the same text
cs-vocab encode -v "$T/v.txt" -o "$T/e.cseq" "$T/b.cseq" 2>"$T/stderr" || die "encode failed"
[ -s "$T/stderr" ] && die "encode with a full vocabulary reported: $(cat "$T/stderr")"
fp=$(grep '^field' "$T/v.txt" | cut -f4)
expect_eq "$(cs-cat "$T/e.cseq" | head -1)" "user:seq:string	item:event:id=$fp" "encoded header"
cs-cat "$T/e.cseq" | awk -F '\t' 'NR > 1 && ($2 < 3 || $2 >= 54545) { exit 1 }' ||
	die "encoded ids out of range"
cs-vocab decode -v "$T/v.txt" "$T/e.cseq" | cs-cat | cmp - "$T/b.txt" || die "decode differs"
ok "encode -> decode round trip gives the same text"

# the wrong vocabulary: refused, both fingerprints named
fp5=$(grep '^field' "$T/v5.txt" | cut -f4)
test_must_fail cs-vocab decode -v "$T/v5.txt" -o "$T/x.cseq" "$T/e.cseq"
stderr_has "'$T/e.cseq' was encoded with another vocabulary for 'item' (fingerprint $fp, vocabulary '$T/v5.txt' has $fp5)"
[ ! -e "$T/x.cseq" ] || die "output left behind"
test_must_fail cs-vocab decode -v "$T/v.txt" "$T/b.cseq"
stderr_has "no id field"
test_must_fail cs-vocab encode -v "$T/v5.txt" "$T/e.cseq"
stderr_has "already encoded with another vocabulary"
ok "decode with the wrong vocabulary fails with a clear message"

# unknown items: counted and reported, or dropped; with the k-core vocabulary
# and --min-len 5 that gives the 5-core stream
cs-vocab encode -v "$T/v5.txt" -o "$T/u.cseq" "$T/b.cseq" 2>"$T/stderr" || die "encode failed"
stderr_has "cs-vocab: item: 106239 of 353962 values unknown (30.01%)"
expect_eq "$(cs-cat "$T/u.cseq" | awk -F '\t' '$2 == 2' | wc -l)" 106239 "[UNK] ids"
cs-vocab encode -d -l 5 -v "$T/v5.txt" -o "$T/c.cseq" "$T/b.cseq" 2>"$T/stderr" || die "encode -d failed"
stderr_has "their events dropped"
stderr_has "17863 sequences with fewer than 5 events dropped"
cs-cat -i "$T/c.cseq" | grep -E '^(records|events)' >"$T/counts"
printf 'records\t22363\nevents\t198502\n' | cmp - "$T/counts" || die "core counts"
cs-vocab decode -q -v "$T/v5.txt" "$T/c.cseq" | cs-vocab build -q -k 5 | cmp - "$T/v5.txt" ||
	die "the 5-core stream is not its own 5-core"
ok "--drop-unknown --min-len 5 with the 5-core vocabulary gives the 5-core"

# damaged vocabulary files
sed '10s/\t[^\t]*\t/\tEDITED\t/' "$T/v.txt" >"$T/bad.txt"
test_must_fail cs-vocab encode -v "$T/bad.txt" -o "$T/x.cseq" "$T/b.cseq"
stderr_has "cs-vocab: $T/bad.txt:3: fingerprint mismatch for 'item'"
head -n 1000 "$T/v.txt" >"$T/bad.txt"
test_must_fail cs-vocab info "$T/bad.txt"
stderr_has "$T/bad.txt:3: section 'item' says 54545 ids but has 997"
sed '7d' "$T/v.txt" >"$T/bad.txt"
test_must_fail cs-vocab info "$T/bad.txt"
stderr_has "$T/bad.txt:7: id 4 out of order (expected 3)"
[ ! -e "$T/x.cseq" ] || die "output left behind"
cs-vocab info "$T/v5.txt" >"$T/info" || die "info failed"
expect_eq "$(cut -f1-3 "$T/info")" "item	size 12104	tokens 12101" "info"
cs-vocab info --json "$T/v5.txt" >"$T/info.json" || die "info --json failed"
python3 - "$T/info.json" "$T/info" <<'EOF2' || die "info --json differs from info"
import json, sys
j = json.load(open(sys.argv[1]))
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("\t")
    kv = dict(x.split(" ") for x in f[1:])
    want = {k: (v if k == "fingerprint" else int(v)) for k, v in kv.items()}
    assert j[f[0]] == want, (j[f[0]], want)
assert len(j) == sum(1 for _ in open(sys.argv[2]))
EOF2
cs-vocab encode --json -v "$T/v5.txt" "$T/v5.txt" >/dev/null 2>&1; expect_eq $? 2 "--json with encode"
ok "damaged vocabularies are rejected with file:line"

cs-vocab >/dev/null 2>"$T/stderr"; expect_eq $? 2 "no command"
cs-vocab frob >/dev/null 2>"$T/stderr"; expect_eq $? 2 "unknown command"
cs-vocab encode "$T/b.cseq" >/dev/null 2>"$T/stderr"; expect_eq $? 2 "encode without -v"
stderr_has "needs a vocabulary"
cs-vocab build -k x "$T/b.cseq" >/dev/null 2>"$T/stderr"; expect_eq $? 2 "bad --kcore"
cs-vocab build -F user,nope "$T/b.cseq" >/dev/null 2>"$T/stderr"; expect_eq $? 1 "missing field"
stderr_has "has no field 'nope'"
cs-vocab --help | grep -q 'min-count N.*\[1\]' || die "--help lacks defaults"
ok "usage errors"
