#!/bin/sh
# cs-mask's classification data on the public heads: purchase intention
# on Kaggle sessions and returns on Online Retail, each checked against
# awk over cs-cat's text; random and whole-sequence splits; --mask-field;
# the errors a user meets.
. tests/lib.sh
K=kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
R=online-retail/OnlineRetail_head10k.csv
need_data "$K"
need_data "$R"

# The head ends in a cut-off row, which cs-ingest reports and skips.
cs-ingest -q -p kaggle --by session -o "$T/k.cseq" "$DATA/$K" 2>"$T/ingest.err" ||
	die "cs-ingest kaggle"
expect_eq "$(info "$T/k.cseq" records)" 5066 "Kaggle sessions"
cs-cat -H "$T/k.cseq" >"$T/k.txt" || die "cs-cat"

# Independently: per session (user and session, columns 1 and 2), whether
# it has a purchase, whether it starts with one, its events before the
# first purchase and the first 3 of them.
awk -F'\t' '
function end() { if (!n) return; seqs++; if (first == "purchase") drop++
	else { pos += buy; ev += pre; ev3 += pre < 3 ? pre : 3 } }
NF == 0 { end(); n = 0; next }
$1 "\t" $2 != key { end(); key = $1 "\t" $2; n = 0; buy = 0; pre = 0 }
{ if (!n++) first = $4; if ($4 == "purchase") buy = 1; else if (!buy) pre++ }
END { end(); print seqs, drop, seqs - drop, pos, ev, ev3 }' "$T/k.txt" >"$T/want"
read seqs drop examples pos ev ev3 <"$T/want"
expect_eq "$seqs $drop $examples $pos" "5066 1 5065 199" "awk's count of Kaggle sessions"

cs-mask session -o "$T/ks.cseq" "$T/k.cseq" 2>"$T/stderr" || die "cs-mask session"
stderr_has "5066 sequences -> $examples examples, $pos positive; $drop dropped"
expect_eq "$(info "$T/ks.cseq" records)" "$examples" "session examples"
expect_eq "$(info "$T/ks.cseq" events)" "$ev" "events before the first purchase"
expect_eq "$(cs-cat "$T/ks.cseq" | head -1 | cut -f10)" "label:seq:int64" "label field"
# From the output itself: one label per sequence, 199 of them 1, no purchase left.
cs-cat -H "$T/ks.cseq" | awk -F'\t' '$1 "\t" $2 != key { key = $1 "\t" $2; n[$NF]++ }
	$4 == "purchase" { bad++ } END { print n[0] + 0, n[1] + 0, bad + 0 }' >"$T/got"
expect_eq "$(cat "$T/got")" "$((examples - pos)) $pos 0" "labels in the output"
cs-mask session -q --first 3 -o "$T/k3.cseq" "$T/k.cseq" || die "--first 3"
expect_eq "$(info "$T/k3.cseq" records) $(info "$T/k3.cseq" events)" "$examples $ev3" \
	"--first 3: sequences and events"
ok "session: $examples examples of 5066 sessions ($drop dropped), $pos positive, as awk counts"

# An encoded action field needs its vocabulary; with it, the same labels.
cs-vocab build -q -o "$T/v.txt" "$T/k.cseq" || die "vocab build"
cs-vocab encode -q -v "$T/v.txt" -o "$T/ke.cseq" "$T/k.cseq" || die "encode"
test_must_fail cs-mask session -q -o "$T/x.cseq" "$T/ke.cseq"
stderr_has "field 'action' holds ids: pass its vocabulary with --vocab"
[ ! -e "$T/x.cseq" ] || die "a failed run left its output"
cs-mask session -q --vocab "$T/v.txt" -o "$T/kse.cseq" "$T/ke.cseq" || die "session --vocab"
cs-vocab decode -q -v "$T/v.txt" "$T/kse.cseq" | cs-cat -H >"$T/dec.txt" || die "decode"
cs-cat -H "$T/ks.cseq" | cmp -s - "$T/dec.txt" || die "labels from ids differ from those from strings"
test_must_fail cs-mask session -q --vocab "$T/v.txt" --purchase buy "$T/ke.cseq"
stderr_has "no token 'buy' in the vocabulary of 'action'"
ok "session on an encoded stream: needs --vocab, then gives the same examples"

test_must_fail cs-mask session -q --action event_type "$T/k.cseq"
stderr_has "k.cseq: stream has no event field 'event_type'"
test_must_fail cs-mask session -q --action price "$T/k.cseq"
stderr_has "field 'price' holds float32 values"
test_must_fail cs-mask session -q "$T/ks.cseq"
stderr_has "already has a field 'label'"
test_must_fail_usage cs-mask session --first 0 "$T/k.cseq"
test_must_fail_usage cs-mask returns --return purchase "$T/k.cseq"
ok "errors: no action field, a float one, labelled twice, bad options"

# Returns on Online Retail users: awk matches each return to the latest
# unmatched purchase of its item and prints user, item and label of every
# event that is not a return.
cs-ingest -q -p retail -o "$T/r.cseq" "$DATA/$R" 2>"$T/ingest.err" || die "cs-ingest retail"
cs-cat -H "$T/r.cseq" | awk -F'\t' -v OFS='\t' '
function end(  i) { if (!n) return; kept = 0
	for (i = 1; i <= n; i++) if (act[i] != "return") { kept++; print u, it[i], lab[i] }
	if (!kept) drop++ }
NF == 0 || $1 != u { end(); u = $1; n = 0 }
NF == 0 { next }
{ n++; it[n] = $2; act[n] = $3; lab[n] = $3 == "purchase" ? 0 : -1
  if ($3 != "return") next
  for (i = n - 1; i > 0; i--) if (act[i] == "purchase" && lab[i] == 0 && it[i] == $2) break
  if (i > 0) { lab[i] = 1; ret++ } else unm++ }
END { end(); print ret, unm, drop > "/dev/stderr" }' >"$T/want" 2>"$T/want.n" || die "awk"
read ret unm rdrop <"$T/want.n"
expect_eq "$ret $unm $rdrop" "9 91 20" "awk's returns"
cs-mask returns -o "$T/rr.cseq" "$T/r.cseq" 2>"$T/stderr" || die "cs-mask returns"
stderr_has "323 sequences -> 303 examples, $rdrop dropped: 7608 purchases, $ret returned;"
stderr_has "$unm returns without a purchase in the data"
cs-cat -H "$T/rr.cseq" >"$T/rr.txt" || die "cs-cat returns"
awk -F'\t' -v OFS='\t' 'NF { print $1, $2, $NF }' "$T/rr.txt" | cmp -s - "$T/want" ||
	die "labels differ from awk's"
awk -F'\t' 'NF { n[$NF]++ } END { print n[-1] + 0, n[0] + 0, n[1] + 0 }' "$T/rr.txt" >"$T/got"
expect_eq "$(cat "$T/got")" "0 7599 9" "labels -1, 0 and 1"
expect_eq "$(cs-cat "$T/rr.cseq" | head -1 | cut -f8)" "label:event:int64" "label field"
ok "returns: 7608 purchases, 9 returned, 91 returns without a purchase, as awk matches them"

# Random split of whole sequences: one schema for the three parts, the
# shares about right, the same parts for the same seed.
cs-mask split -q --random 0.1,0.2 -o "$T/a" "$T/ks.cseq" || die "random split"
cs-mask split -q --random 0.1,0.2 -o "$T/b" "$T/ks.cseq" || die "random split again"
cs-mask split -q --random 0.1,0.2 --seed 7 -o "$T/c" "$T/ks.cseq" || die "random split seed 7"
h=$(cs-cat "$T/ks.cseq" | head -1)
for p in train valid test; do
	expect_eq "$(cs-cat "$T/a.$p.cseq" | head -1)" "$h" "$p header"
	cs-cat "$T/a.$p.cseq" >"$T/a.$p.txt"
	cs-cat "$T/b.$p.cseq" | cmp -s - "$T/a.$p.txt" || die "$p differs for the same seed"
done
cs-cat "$T/c.test.cseq" | cmp -s - "$T/a.test.txt" && die "seed 7 gave the same test part"
nt=$(info "$T/a.train.cseq" records) nv=$(info "$T/a.valid.cseq" records)
ns=$(info "$T/a.test.cseq" records)
expect_eq "$((nt + nv + ns))" "$examples" "sequences in the three parts"
awk -v v="$nv" -v t="$ns" -v n="$examples" 'BEGIN { exit !(v > 0.08 * n && v < 0.12 * n &&
	t > 0.17 * n && t < 0.23 * n) }' || die "shares $nv and $ns of $n"
expect_eq "$(cs-cat --info "$T/a.valid.cseq" | grep split)" "meta	split	valid" "split metadata"
test_must_fail_usage cs-mask split --random 0.5,0.5 -o "$T/x" "$T/ks.cseq"
test_must_fail_usage cs-mask split --random 0.1 -o "$T/x" "$T/ks.cseq"
test_must_fail_usage cs-mask split --random 0.1,0.1 --time-cut 0 -o "$T/x" "$T/ks.cseq"
test_must_fail cs-mask split -q --random 0,0 -o "$T/x" "$T/ks.cseq"
stderr_has "the test split is empty"
ok "random split: train $nt, valid $nv, test $ns, the input's schema, deterministic"

# --whole with a time cut: whole sequences in each part, every event kept.
cs-mask split -q --time-cut "2019-10-01 02:00:00" --valid-cut "2019-10-01 01:00:00" --whole \
	-o "$T/w" "$T/ks.cseq" || die "whole time split"
e=0
for p in train valid test; do
	expect_eq "$(cs-cat "$T/w.$p.cseq" | head -1)" "$h" "whole $p header"
	e=$((e + $(info "$T/w.$p.cseq" events)))
done
expect_eq "$e" "$ev" "events in the three whole parts"
test_must_fail_usage cs-mask split --whole -o "$T/x" "$T/ks.cseq"
ok "time split with --whole keeps every event"

# --mask-field action: the action is [MASK] exactly where the item is.
cs-mask cloze -q --dupe 2 --mask-field action -o "$T/cz.cseq" "$T/ke.cseq" || die "cloze"
cs-cat -H "$T/cz.cseq" | awk -F'\t' 'NF < 2 { next } $NF != 0 { m++ }
	($NF != 0) != ($4 == 1) || ($NF != 0) != ($3 == 1) { bad++ }
	END { exit !(m > 0 && bad == 0) }' || die "action not masked with the item"
cs-mask cloze -q --dupe 2 -o "$T/cz0.cseq" "$T/ke.cseq" || die "cloze"
cs-cat -H "$T/cz0.cseq" | awk -F'\t' 'NF > 1 && $4 == 1 { exit 1 }' || die "action masked by default"
test_must_fail cs-mask cloze -q --mask-field price -o "$T/x.cseq" "$T/ke.cseq"
stderr_has "only id fields can be masked"
ok "cloze --mask-field action masks the whole event"

cs-mask --help | grep -q -- "--mask-field" && cs-mask --help | grep -q "cs-mask returns" ||
	die "--help lacks the new commands"
ok "--help"
