#!/bin/sh
# cs-ingest on the real data sets, counts checked against independent
# counts (awk, python) or the published figures.
. tests/lib.sh

K=kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
need_data "$K"
[ -x ./cs-cat ] || { echo "skip: cs-cat not built"; exit 0; }

# info FILE KEY: a count from cs-cat --info
# column N of cs-cat's event lines, distinct values counted
distinct() { ./cs-cat -H "$1" | cut -f"$2" | sort -u | wc -l | tr -d ' '; }

# --- pairs: the BERT4Rec Beauty figures
./cs-ingest -q -p pairs -o "$T/pairs.cseq" "$DATA/amazon-beauty/beauty_bert4rec.txt" || die "pairs"
expect_eq "$(info "$T/pairs.cseq" records)" 40226 "pairs sequences"
expect_eq "$(info "$T/pairs.cseq" events)" 353962 "pairs events"
ok "pairs: 40226 sequences, 353962 events"

# order of lines is time order: the first user's items as in the file
want=$(awk '$1 == 1 { print $2 }' "$DATA/amazon-beauty/beauty_bert4rec.txt" | tr '\n' ' ')
got=$(./cs-cat -H "$T/pairs.cseq" | awk -F'\t' '$1 == 1 { print $2 }' | tr '\n' ' ')
expect_eq "$got" "$want" "pairs order of user 1"
# digit-only keys in numeric order
./cs-cat -H "$T/pairs.cseq" | cut -f1 | uniq > "$T/users"
sort -n -c "$T/users" || die "pairs users not in numeric order"
ok "pairs: input order kept, users in numeric order"

# --- seqlines
./cs-ingest -q -p seqlines -o "$T/seq.cseq" "$DATA/amazon-beauty/beauty_5core_seq.txt" || die "seqlines"
expect_eq "$(info "$T/seq.cseq" records)" 22363 "seqlines sequences"
expect_eq "$(info "$T/seq.cseq" events)" 198502 "seqlines events"
ok "seqlines: 22363 sequences, 198502 events"

# --- kaggle by session: the cut-off last line is reported and skipped
./cs-ingest -p kaggle --by session -o "$T/k.cseq" "$DATA/$K" 2>"$T/stderr" || die "kaggle"
stderr_has "2019-Oct_head17k.csv:17436: expected 9 columns, got 8"
stderr_has "1 bad"
stderr_has "5066 sequences, 17434 events"
expect_eq "$(info "$T/k.cseq" records)" 5066 "kaggle sessions"
expect_eq "$(info "$T/k.cseq" events)" 17434 "kaggle events"
expect_eq "$(distinct "$T/k.cseq" 1)" 4504 "kaggle distinct users"
expect_eq "$(distinct "$T/k.cseq" 2)" 5066 "kaggle distinct sessions"
acts=$(./cs-cat -H "$T/k.cseq" | cut -f4 | sort | uniq -c | awk '{ printf "%s %s,", $2, $1 }')
expect_eq "$acts" "cart 165,purchase 214,view 17055," "kaggle actions"
ok "kaggle --by session: 5066 sessions, 4504 users, 17434 events"

# events within a session are in time order
./cs-cat -H "$T/k.cseq" | awk -F'\t' '$2 == s && $5 < t { bad = 1 } { s = $2; t = $5 } END { exit bad }' ||
	die "kaggle events out of time order"
# a known first row: 2019-10-01 00:00:00 UTC = 1569888000, category kept, price float
./cs-cat -H "$T/k.cseq" | grep -q "^541312140	72d76fde-8bb3-4e00-8c23-a032dfed738c	44600062	view	1569888000	2103807459595387724		shiseido	35.79$" ||
	die "kaggle first row not found"
ok "kaggle: time order, fields kept"

./cs-ingest -q -p kaggle -o "$T/ku.cseq" "$DATA/$K" 2>"$T/stderr" || die "kaggle by user"
expect_eq "$(info "$T/ku.cseq" records)" 4504 "kaggle users"
ok "kaggle --by user: 4504 sequences"

# --strict: the bad line is fatal and no output is left
test_must_fail ./cs-ingest -q -p kaggle --strict -o "$T/strict.cseq" "$DATA/$K"
stderr_has "2019-Oct_head17k.csv:17436: expected 9 columns, got 8"
[ ! -e "$T/strict.cseq" ] || die "strict left an output file"
ok "kaggle --strict fails without output"

# external sort: a tiny memory budget, many runs, the same bytes
./cs-ingest -p kaggle --by session --mem 64k -j 2 -o "$T/k2.cseq" "$DATA/$K" 2>"$T/stderr" || die "kaggle spill"
stderr_has "runs spilled"
cmp "$T/k.cseq" "$T/k2.cseq" || die "spilled output differs"
./cs-ingest -q -p kaggle --by session -j 1 -o "$T/k3.cseq" "$DATA/$K" 2>"$T/stderr" || die "kaggle -j 1"
# zstd workers may frame the bytes differently: compare the contents
./cs-cat -m "$T/k.cseq" > "$T/k.txt" && ./cs-cat -m "$T/k3.cseq" > "$T/k3.txt" || die "cs-cat"
cmp "$T/k.txt" "$T/k3.txt" || die "-j 1 output differs"
ok "external sort and -j give identical output"

# stdin, and several files read as one input with line numbers per file
head -n 8001 "$DATA/$K" > "$T/a.csv"
{ head -n 1 "$DATA/$K"; tail -n +8002 "$DATA/$K"; } > "$T/b.csv"
./cs-ingest -q -p kaggle --by session -o "$T/k4.cseq" "$T/a.csv" "$T/b.csv" 2>"$T/stderr" || die "two files"
cmp "$T/k.cseq" "$T/k4.cseq" || die "two files differ from one"
./cs-ingest -p kaggle --by session -o "$T/k5.cseq" - < "$T/b.csv" 2>"$T/stderr" || die "stdin"
stderr_has "<stdin>:9436: expected 9 columns, got 8"
ok "several files and stdin"

# --- amazon ratings: trailing comma, CRLF
A=$DATA/amazon-beauty/ratings_Beauty_head30k.csv
./cs-ingest -q -p amazon -o "$T/a.cseq" "$A" || die "amazon"
expect_eq "$(info "$T/a.cseq" events)" "$(awk 'NR > 1' "$A" | wc -l | tr -d ' ')" "amazon events"
expect_eq "$(info "$T/a.cseq" records)" "$(awk -F, 'NR > 1 { print $1 }' "$A" | sort -u | wc -l | tr -d ' ')" \
	"amazon users"
ok "amazon: $(info "$T/a.cseq" records) users, $(info "$T/a.cseq" events) ratings"

# --- diginetica views joined with purchases
V=$DATA/diginetica/sample_train-item-views.csv P=$DATA/diginetica/train-purchases.csv
./cs-ingest -q -p diginetica --purchases "$P" -o "$T/d.cseq" "$V" || die "diginetica"
nv=$(awk 'NR > 1' "$V" | wc -l | tr -d ' ')
ns=$(awk -F';' 'NR > 1 { print $1 }' "$V" | sort -u | wc -l | tr -d ' ')
np=$(awk -F';' 'FNR == NR { if (FNR > 1) s[$1] = 1; next } FNR > 1 && ($1 in s)' "$V" "$P" | wc -l | tr -d ' ')
expect_eq "$(info "$T/d.cseq" records)" "$ns" "diginetica sessions"
expect_eq "$(info "$T/d.cseq" events)" "$((nv + np))" "diginetica events"
expect_eq "$(./cs-cat -H "$T/d.cseq" | awk -F'\t' '$4 == "purchase"' | wc -l | tr -d ' ')" "$np" "diginetica purchases"
ok "diginetica: $ns sessions, $nv views, $np purchases"

# --- online retail: returns, two date formats, customers missing
for f in OnlineRetail_head10k.csv online_retail_random20k.csv; do
	R=$DATA/online-retail/$f
	./cs-ingest -p retail -o "$T/r.cseq" "$R" 2>"$T/stderr" || die "retail $f"
	want=$(python3 -c '
import csv, sys
r = [x for x in csv.DictReader(open(sys.argv[1], encoding="utf-8-sig", newline=""))
     if x["CustomerID"] not in ("", "NA")]
print(len(r), len(set(x["CustomerID"] for x in r)), sum(x["InvoiceNo"].startswith("C") for x in r))
' "$R") || die "python"
	got="$(info "$T/r.cseq" events) $(info "$T/r.cseq" records) $(./cs-cat -H "$T/r.cseq" | awk -F'\t' '$3 == "return"' | wc -l | tr -d ' ')"
	expect_eq "$got" "$want" "retail $f events, customers, returns"
	stderr_has "0 bad"
	./cs-ingest -q -p retail --mem 16k -o "$T/r2.cseq" "$R" || die "retail $f spilled"
	cmp "$T/r.cseq" "$T/r2.cseq" || die "retail $f: spilled output differs"
	ok "retail $f: $got"
done

# --- a generic mapping with a strptime pattern
printf 'who;what;when\nu1;x;01.12.2010 08:26\nu1;y;01.12.2010 08:25\n' > "$T/g.csv"
./cs-ingest -q -s ';' -u who -i what -t when -T '%d.%m.%Y %H:%M' -o "$T/g.cseq" "$T/g.csv" || die "generic"
expect_eq "$(./cs-cat -H "$T/g.cseq" | tr '\t' ' ' | tr '\n' '/')" "u1 y 1291191900/u1 x 1291191960/" "generic"
ok "generic mapping"

# --- usage errors
./cs-ingest --bogus </dev/null >/dev/null 2>"$T/stderr"; rc=$?
expect_eq "$rc" 2 "unknown option"
./cs-ingest -p nope </dev/null >/dev/null 2>"$T/stderr"; rc=$?
expect_eq "$rc" 2 "unknown preset"
./cs-ingest -p kaggle -i nope -o "$T/x.cseq" "$DATA/$K" 2>"$T/stderr"; rc=$?
expect_eq "$rc" 2 "unknown column"
stderr_has "no item column 'nope'"
[ ! -e "$T/x.cseq" ] || die "usage error left an output file"
./cs-ingest --help > "$T/help" || die "--help"
grep -q -- "--mem SIZE" "$T/help" || die "help lacks --mem"
ok "usage errors exit 2, --help exits 0"
