#!/bin/sh
# cs-cat: text <-> stream round trips, JSON, --info and errors.
. tests/lib.sh

# A hand-written stream: escapes, empty strings, extreme numbers, a
# sequence without events, and two neighbours with the same user.
printf '%s\n' '#meta	source	hand\twritten' \
	'user:seq:string	item:event:string	time:event:int64	price:event:float32' \
	'u1	a\tb	-9223372036854775808	0.1' \
	'u1		9223372036854775807	-0' \
	'u2	\N	\N	\N' \
	'u3	x\\y\nz	0	nan' \
	'' \
	'u3	\x01	1	3.4028235e+38' >"$T/a.txt"
cs-cat -r -o "$T/a.cseq" "$T/a.txt" || die "cs-cat -r failed"
cs-cat -m "$T/a.cseq" >"$T/b.txt" || die "cs-cat -m failed"
cmp "$T/a.txt" "$T/b.txt" || die "text -> stream -> text differs"
ok "hand-written text round trip is byte-identical"

cs-cat -i "$T/a.cseq" >"$T/info" || die "cs-cat -i failed"
printf '%s\n' 'field	user	seq	string' 'field	item	event	string' \
	'field	time	event	int64' 'field	price	event	float32' \
	'meta	source	hand\twritten' 'records	4' 'events	4' >"$T/info.want"
cmp "$T/info" "$T/info.want" || die "--info output differs"
ok "--info lists fields, metadata and counts"

cs-cat -j "$T/a.cseq" >"$T/j" || die "cs-cat -j failed"
cat >"$T/j.want" <<'JSON'
{"user":"u1","item":["a\tb",""],"time":[-9223372036854775808,9223372036854775807],"price":[0.1,-0]}
{"user":"u2","item":[],"time":[],"price":[]}
{"user":"u3","item":["x\\y\nz"],"time":[0],"price":[null]}
{"user":"u3","item":["\u0001"],"time":[1],"price":[3.4028235e+38]}
JSON
cmp "$T/j" "$T/j.want" || die "--json output differs"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/j" ||
	die "JSON lines do not parse"
ok "--json writes one valid object per sequence"

# stdin and stdout through pipes, default output without metadata lines
cs-cat -r <"$T/a.txt" | cs-cat >"$T/c.txt" || die "pipe failed"
tail -n +2 "$T/a.txt" | cmp - "$T/c.txt" || die "piped output differs"
ok "works through pipes"

# errors in text input name the file and line; no output file is left
printf 'user:seq:string\titem:event:int64\nu1\t1\nu1\tx\n' >"$T/bad.txt"
test_must_fail cs-cat -r -o "$T/bad.cseq" "$T/bad.txt"
stderr_has "cs-cat: $T/bad.txt:3: invalid int64 'x' for field 'item'"
ls -A "$T" | grep -q 'bad\.cseq' && die "a failed run left its output or temporary file"
printf 'user:seq:string\titem:event:int64\nu1\t1\t2\n' | test_must_fail cs-cat -r -o "$T/bad.cseq"
stderr_has "cs-cat: -:2: 3 columns, the header has 2"
printf 'user:seq:strin\n' | test_must_fail cs-cat -r -o "$T/bad.cseq"
stderr_has "-:1: unknown type 'strin'"
test_must_fail cs-cat "$T/a.txt"
stderr_has "cs-cat: $T/a.txt"
test_must_fail cs-cat "$T/missing.cseq"
stderr_has "missing.cseq"
ok "bad input fails with exit 1 and file:line messages"

cs-cat --bogus >/dev/null 2>"$T/stderr"; expect_eq $? 2 "unknown option"
cs-cat -r -j "$T/a.txt" >/dev/null 2>"$T/stderr"; expect_eq $? 2 "-r with -j"
stderr_has "cannot be combined"
cs-cat a b >/dev/null 2>"$T/stderr"; expect_eq $? 2 "two inputs"
cs-cat --help >"$T/help" || die "--help failed"
grep -q 'output file.*\[-\]' "$T/help" || die "--help lacks defaults"
cs-cat --version | grep -q 'stream format version' || die "--version"
ok "usage errors exit 2, --help and --version"

# real data: the Kaggle export has int64, float32 and empty strings
need_data kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
[ -x ./cs-ingest ] || { echo "skip: no cs-ingest"; exit 0; }
cs-ingest -q -p kaggle -o "$T/k.cseq" "$DATA/kaggle-ecommerce-multicategory/2019-Oct_head17k.csv" 2>/dev/null ||
	die "cs-ingest failed"
cs-cat -m "$T/k.cseq" >"$T/k.txt" || die "cs-cat failed"
expect_eq "$(grep -c . "$T/k.txt")" 17439 "lines (4 meta + header + 17434 events)"
cs-cat -r "$T/k.txt" -o "$T/k2.cseq" || die "cs-cat -r failed"
cs-cat -m "$T/k2.cseq" | cmp - "$T/k.txt" || die "Kaggle text round trip differs"
cs-cat -i "$T/k.cseq" >"$T/k.info"
cs-cat -i "$T/k2.cseq" | cmp - "$T/k.info" || die "schema or counts differ"
ok "Kaggle stream -> text -> stream -> text is identical"

# Plain header names for awk and pandas; the data lines are the same.
cs-cat -P "$T/a.cseq" >"$T/p.txt" || die "cs-cat -P"
expect_eq "$(head -1 "$T/p.txt")" "$(printf 'user\titem\ttime\tprice')" "plain header"
cs-cat "$T/a.cseq" | tail -n +2 >"$T/d1" || die "cs-cat"
tail -n +2 "$T/p.txt" >"$T/d2"
cmp "$T/d1" "$T/d2" || die "-P changed the data lines"
for o in -H -j -r -i; do
	cs-cat -P $o "$T/a.cseq" >/dev/null 2>&1; expect_eq $? 2 "-P with $o"
done
ok "--plain-header names the columns plainly"

# --info --json: the same schema, metadata and counts as one JSON object.
cs-cat -i -j "$T/a.cseq" >"$T/info.json" || die "cs-cat -i -j"
python3 - "$T/info.json" "$T/info.want" <<'EOF2' || die "--info --json differs from --info"
import json, sys
j = json.load(open(sys.argv[1]))
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
want = {"fields": [{"name": r[1], "level": r[2], "type": r[3]} for r in rows if r[0] == "field"],
        "meta": {r[1]: r[2].replace("\\t", "\t") for r in rows if r[0] == "meta"},
        "records": int([r for r in rows if r[0] == "records"][0][1]),
        "events": int([r for r in rows if r[0] == "events"][0][1])}
assert j == want, (j, want)
EOF2
ok "--info --json"
