#!/bin/sh
# cs-stats: counts checked against awk over the raw CSV, JSON, any grouping,
# encoded streams, streams without actions or sessions, and errors.
. tests/lib.sh

# stat FILE SECTION KEY: a value of cs-stats' TSV output.
stat() { awk -F'\t' -v s="$2" -v k="$3" '$1 == s && $2 == k { print $3 }' "$1"; }

# A hand-written stream: what the stream lacks is named, not printed as zeros.
printf 'user:seq:string\titem:event:string\nu1\ta\nu1\tb\nu2\ta\n' | cs-cat -r -o "$T/pairs.cseq" ||
	die "cs-cat -r"
cs-stats "$T/pairs.cseq" >"$T/pairs.tsv" || die "cs-stats on pairs"
expect_eq "$(stat "$T/pairs.tsv" unique users)" 2 "users of pairs"
expect_eq "$(stat "$T/pairs.tsv" top_item a)" 2 "top item of pairs"
expect_eq "$(stat "$T/pairs.tsv" popularity items)" 2 "items of pairs"
expect_eq "$(stat "$T/pairs.tsv" missing action)" "no 'action' field: no events per type, no funnel" \
	"missing action"
expect_eq "$(stat "$T/pairs.tsv" missing session)" \
	"no 'session' field: no unique sessions, no funnel per session" "missing session"
expect_eq "$(stat "$T/pairs.tsv" missing time)" \
	"no 'time' field: no time range, no events per day or hour" "missing time"
grep -qE '^(funnel|action|sessions_with|day|hour)	' "$T/pairs.tsv" &&
	die "statistics of missing fields printed"
ok "a stream without actions, sessions or time says so"

# errors: exit 1 with the file named, 2 for usage
test_must_fail cs-stats "$T/none.cseq"
stderr_has "cs-stats: $T/none.cseq"
head -c $(($(wc -c <"$T/pairs.cseq") - 8)) "$T/pairs.cseq" >"$T/cut.cseq"
test_must_fail cs-stats "$T/cut.cseq"
stderr_has "$T/cut.cseq"
printf 'not a stream\n' | test_must_fail cs-stats
test_must_fail_usage cs-stats --bogus
test_must_fail_usage cs-stats -n 0 "$T/pairs.cseq"
test_must_fail_usage cs-stats -L log.tsv "$T/pairs.cseq"
test_must_fail_usage cs-stats "$T/pairs.cseq" "$T/pairs.cseq"
cs-stats --help | grep -q -- '--top N' || die "--help"
ok "errors exit 1 naming the file, usage errors 2"

K=kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
need_data "$K"
cs-ingest -q -p kaggle --by session "$DATA/$K" -o "$T/sess.cseq" 2>/dev/null || die "ingest by session"
cs-ingest -q -p kaggle --by user "$DATA/$K" -o "$T/user.cseq" 2>/dev/null || die "ingest by user"
cs-stats -o "$T/s.tsv" "$T/sess.cseq" || die "cs-stats"

# The same figures from the CSV with awk: complete rows only (the last is cut short).
tr -d '\r' <"$DATA/$K" | awk -F, 'NR > 1 && NF == 9 && $9 != ""' >"$T/rows.csv"
want() { awk -F, "$1" "$T/rows.csv"; }
expect_eq "$(stat "$T/s.tsv" stream events)" "$(want 'END { print NR }')" "events"
for a in view cart purchase; do
	expect_eq "$(stat "$T/s.tsv" action $a)" "$(want "\$2 == \"$a\" { n++ } END { print n }")" "$a events"
	expect_eq "$(stat "$T/s.tsv" sessions_with $a)" \
		"$(want "\$2 == \"$a\" && !s[\$9]++ { n++ } END { print n }")" "sessions with $a"
	expect_eq "$(stat "$T/s.tsv" users_with $a)" \
		"$(want "\$2 == \"$a\" && !s[\$8]++ { n++ } END { print n }")" "users with $a"
done
expect_eq "$(stat "$T/s.tsv" unique users)" "$(want '!s[$8]++ { n++ } END { print n }')" "users"
expect_eq "$(stat "$T/s.tsv" unique sessions)" "$(want '!s[$9]++ { n++ } END { print n }')" "sessions"
expect_eq "$(stat "$T/s.tsv" unique item)" "$(want '!s[$3]++ { n++ } END { print n }')" "items"
expect_eq "$(stat "$T/s.tsv" unique brand)" "$(want '$6 != "" && !s[$6]++ { n++ } END { print n }')" "brands"
expect_eq "$(stat "$T/s.tsv" empty brand)" "$(want '$6 == "" { n++ } END { print n }')" "empty brands"
expect_eq "$(stat "$T/s.tsv" empty category_code)" "$(want '$5 == "" { n++ } END { print n }')" \
	"empty category codes"
top=$(want '{ c[$3]++ } END { for (i in c) print c[i] "\t" i }' | sort -k1,1nr -k2,2 | head -1)
expect_eq "$(awk -F'\t' '$1 == "top_item" { print $3 "\t" $2; exit }' "$T/s.tsv")" "$top" "top item"
expect_eq "$(stat "$T/s.tsv" top_brand samsung)" "$(want '$6 == "samsung" { n++ } END { print n }')" \
	"samsung"
expect_eq "$(stat "$T/s.tsv" time first)" "2019-10-01T00:00:00Z" "first time"
expect_eq "$(stat "$T/s.tsv" time last)" \
	"$(want '{ print $1 }' | sort | tail -1 | sed 's/ UTC$/Z/; s/ /T/')" "last time"
expect_eq "$(stat "$T/s.tsv" day 2019-10-01)" "$(want 'END { print NR }')" "events of the day"
expect_eq "$(stat "$T/s.tsv" hour 02)" "$(want 'substr($1, 12, 2) == "02" { n++ } END { print n }')" \
	"events at 02h"
expect_eq "$(stat "$T/s.tsv" length max)" \
	"$(want '{ c[$9]++ } END { for (i in c) if (c[i] > m) m = c[i]; print m }')" "longest session"
ok "counts, funnel, top values and time agree with awk over the CSV"

# The share of events on the top 10% of items, from the CSV.
share=$(want '{ c[$3]++ } END { for (i in c) print c[i] }' | sort -nr |
	awk '{ v[NR] = $1; t += $1 } END { k = int((NR + 9) / 10); for (i = 1; i <= k; i++) s += v[i];
		printf "%.6g\n", s / t }')
expect_eq "$(stat "$T/s.tsv" popularity top10pct_share)" "$share" "top 10% share"
ok "popularity concentration agrees with awk"

# JSON holds the same sections, keys and values.
cs-stats -j "$T/sess.cseq" >"$T/s.json" || die "cs-stats -j"
python3 - "$T/s.json" "$T/s.tsv" <<'EOF' || die "JSON differs from TSV"
import json, sys
j = json.load(open(sys.argv[1]))
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert sum(len(v) for v in j.values()) == len(rows), "row counts differ"
for s, k, v in rows:
    got = j[s][k]
    assert str(got) == v or float(got) == float(v), (s, k, got, v)
EOF
ok "--json parses and matches the TSV"

# Grouped by user, the per-user and per-session figures are the same.
cs-stats "$T/user.cseq" >"$T/u.tsv" || die "cs-stats by user"
for sec in unique action sessions_with users_with funnel top_item empty popularity day; do
	grep "^$sec	" "$T/s.tsv" >"$T/a" || true
	grep "^$sec	" "$T/u.tsv" >"$T/b" || true
	cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b" >&2; die "section $sec differs by user"; }
done
ok "a stream grouped by user gives the same counts"

# Encoded with a vocabulary: the same output when given it, ids without.
cs-vocab build -q -F item,action,brand -o "$T/v.txt" "$T/sess.cseq" 2>/dev/null || die "vocab"
cs-vocab encode -q -v "$T/v.txt" -o "$T/enc.cseq" "$T/sess.cseq" || die "encode"
cs-stats -v "$T/v.txt" -o "$T/e.tsv" "$T/enc.cseq" || die "cs-stats -v"
cmp "$T/s.tsv" "$T/e.tsv" || die "the encoded stream with its vocabulary differs"
cs-stats "$T/enc.cseq" >"$T/e2.tsv" || die "cs-stats on ids"
grep -q "^note	brand	ids: give the vocabulary" "$T/e2.tsv" || die "no note on ids"
ok "an encoded stream with --vocab gives the same output"

# Beauty pairs: users and items, the rest missing.
B=amazon-beauty/beauty_bert4rec.txt
if [ -f "$DATA/$B" ]; then
	cs-ingest -q -p pairs "$DATA/$B" 2>/dev/null | cs-stats >"$T/b.tsv" || die "beauty"
	expect_eq "$(stat "$T/b.tsv" unique users)" 40226 "Beauty users"
	expect_eq "$(stat "$T/b.tsv" unique item)" 54542 "Beauty items"
	expect_eq "$(stat "$T/b.tsv" stream events)" 353962 "Beauty events"
	[ -n "$(stat "$T/b.tsv" missing action)" ] || die "Beauty: no missing action row"
	ok "Beauty pairs through a pipe"
fi
