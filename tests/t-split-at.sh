#!/bin/sh
# cs-mask split --at, the global time split, on the users of the Kaggle
# head: every part checked against awk over cs-cat's text of the input
# (training: the events before the cut; test: the first event at or after
# it, with every event before it), the counts that must add up, --valid-at,
# and the errors a user meets.
. tests/lib.sh
K=kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
need_data "$K"

cs-ingest -q -p kaggle -o "$T/k.cseq" "$DATA/$K" 2>"$T/ingest.err" || die "cs-ingest kaggle"
expect_eq "$(info "$T/k.cseq" records) $(info "$T/k.cseq" events)" "4504 17434" "Kaggle users"
cs-cat -H "$T/k.cseq" >"$T/k.txt" || die "cs-cat"
# The head's events run from 00:00 to 02:50, most after 02:00.
C=1569897300 # 2019-10-01 02:35:00 UTC
V=1569896400 # 2019-10-01 02:20:00 UTC

# want V C: what a split at C (training until V, validation in [V, C), if
# V < C) must write, from the input's text (users are its column 1, time
# its column 4): $T/want.train, .valid and .test as cs-cat -H prints them,
# and the counts read back below.
want() {
	awk -F'\t' -v OFS='\t' -v V="$1" -v C="$2" -v d="$T/want" '
	function hold(p, f,  i) { for (i = 1; i < p; i++) print row[i], item[p], p - 1 > f }
	function end(  i, tr, va, te) {
		if (!n) return
		for (i = 1; i <= n && tm[i] < V; i++) print row[i] > (d ".train")
		tr = i - 1; va = 0; te = 0
		if (i > 1 && i <= n && tm[i] < C) { hold(i, d ".valid"); va = i - 1 }
		while (i <= n && tm[i] < C) i++
		if (i > 1 && i <= n) { hold(i, d ".test"); te = i - 1; at += tm[i] == C }
		seqs++; trs += tr > 0; vas += va > 0; tes += te > 0
		drop += !tr && !va && !te; trev += tr; vaev += va; teev += te
		if (te && va) nested += te > va
	}
	$1 != u { end(); u = $1; n = 0 }
	{ n++; row[n] = $0; item[n] = $2; tm[n] = $4 }
	END {
		end()
		print seqs, trs, vas, tes, drop, trev, vaev, teev, at, nested + 0 > (d ".counts")
	}' "$T/k.txt"
	for p in train valid test; do touch "$T/want.$p"; done
}

# check PREFIX: the parts match awk's, cs-cat's summary says the counts
# (and sets them, for what follows).
check() {
	read -r seqs trs vas tes drop trev vaev teev at nested <"$T/want.counts"
	stderr_has "$seqs sequences: train $trs, valid $vas, test $tes, dropped $drop"
	for p in train valid test; do
		cs-cat -H "$1.$p.cseq" >"$T/got.$p" || die "cs-cat $p"
		cmp -s "$T/got.$p" "$T/want.$p" || die "$1.$p differs from awk's"
	done
	expect_eq "$(info "$1.train.cseq" records) $(info "$1.train.cseq" events)" "$trs $trev" \
		"training sequences and events"
	expect_eq "$(info "$1.test.cseq" records) $(info "$1.test.cseq" events)" "$tes $teev" \
		"test records and history events"
	expect_eq "$(cs-cat --info "$1.test.cseq" | grep -c '^meta	split_at	1569897300$')" 1 \
		"the cut in the test part's metadata"
}

# audit PREFIX V C: from the outputs and the input alone, each training
# event is before V, each validation target (the item at target_pos of the
# user's input sequence) in [V, C), each test target at or after C, and the
# last event of each history before its part's cut. Each input event must
# be in one place: training, a held-out target or after one, a history
# only (of a user whose first event comes after V), or a user left out.
audit() {
	for p in train valid test; do cs-cat -H "$1.$p.cseq" >"$T/$p.txt" || die "cs-cat $p"; done
	awk -F'\t' -v v="$2" -v c="$3" -v d="$T/" '
	function check(part, lo, hi,  p) {
		p = pos[part, u]
		if (h[part, u] != p || it[u, p + 1] != tgt[part, u] || t[u, p + 1] < lo ||
		    t[u, p + 1] >= hi || last[part, u] >= lo || last[part, u] != t[u, p]) {
			print part " record of " u > "/dev/stderr"; bad++ }
		return p
	}
	FILENAME == d "train.txt" { if ($4 >= v) { print "training event at " $4 > "/dev/stderr"
				    bad++ }
				    m[$1]++; next }
	FILENAME != d "k.txt" { part = FILENAME; h[part, $1]++; tgt[part, $1] = $10
				pos[part, $1] = $11; last[part, $1] = $4; next }
	{ n[$1]++; it[$1, n[$1]] = $2; t[$1, n[$1]] = $4 }
	END {
		vf = d "valid.txt"; tf = d "test.txt"
		for (u in n) {
			trev += m[u]; p = n[u]
			if ((tf, u) in pos) p = check(tf, c, 1e18)
			if ((vf, u) in pos) p = check(vf, v, c)
			if (p == n[u]) { if (!m[u]) none += n[u]; else if (m[u] != n[u]) bad++; continue }
			held += n[u] - p
			if (m[u] && m[u] != p) { print "history of " u > "/dev/stderr"; bad++ }
			only += p - m[u]
		}
		print trev, held, only, none
		exit bad > 0
	}' "$T/train.txt" "$T/valid.txt" "$T/test.txt" "$T/k.txt" >"$T/audit" ||
		die "$1: the audit failed"
	read -r atr aheld aonly anone <"$T/audit"
	expect_eq "$((atr + aheld + aonly + anone))" 17434 "training events ($atr) + targets \
and later ($aheld) + histories only ($aonly) + users left out ($anone)"
}

want "$C" "$C"
cs-mask split --at "2019-10-01 02:35:00" -o "$T/a" "$T/k.cseq" 2>"$T/stderr" ||
	die "split --at"
check "$T/a"
audit "$T/a" "$C" "$C"
expect_eq "$vas $vaev" "0 0" "no validation without --valid-at"
[ "$tes" -gt 100 ] && [ "$trs" -gt "$tes" ] || die "a cut that splits too little ($trs, $tes)"
[ "$at" -gt 0 ] || die "no test target exactly at the cut: pick another"
# Users drop only when they have no event before the cut.
nodrop=$(awk -F'\t' -v c="$C" '$1 != u { u = $1; if ($4 < c) k++ } END { print k }' "$T/k.txt")
expect_eq "$trs $((seqs - drop))" "$nodrop $nodrop" "users with an event before the cut"
ok "--at: $trs training sequences ($trev events), $tes test records ($at targets at the cut), as awk splits"

want "$V" "$C"
cs-mask split --at 1569897300 --valid-at "2019-10-01 02:20:00" -o "$T/b" "$T/k.cseq" \
	2>"$T/stderr" || die "split --at --valid-at"
check "$T/b"
audit "$T/b" "$V" "$C"
[ "$vas" -gt 50 ] && [ "$nested" -gt 0 ] || die "a validation cut that splits too little"
expect_eq "$(cs-cat --info "$T/b.valid.cseq" | grep -c '^meta	split_valid_at	1569896400$')" 1 \
	"the validation cut in the metadata"
# The test records are those without --valid-at: their histories hold
# the validation period.
cs-cat -H "$T/a.test.cseq" | cmp -s - "$T/got.test" || die "--valid-at changed the test records"
ok "--valid-at: $trs training sequences, $vas validation records, $nested of them before a test record"

# --min-len drops whole sequences first, as in the other splits: the
# parts are those of --at without the users of fewer than 5 events.
cs-mask split -q --at 1569897300 --min-len 5 -o "$T/m" "$T/k.cseq" || die "--min-len"
cut -f1 "$T/k.txt" | uniq -c | awk '$1 >= 5 { print $2 }' >"$T/long"
for p in train test; do
	cs-cat -H "$T/a.$p.cseq" | awk -F'\t' 'NR == FNR { keep[$1]; next } $1 in keep' \
		"$T/long" - >"$T/want.m"
	cs-cat -H "$T/m.$p.cseq" | cmp -s - "$T/want.m" || die "--min-len 5: $p part"
	[ -s "$T/want.m" ] || die "--min-len 5: empty $p part"
done
ok "--min-len 5: the parts of the $(wc -l <"$T/long") users with at least 5 events"

# Errors. Usage: conflicting splits, --valid-at without a later --at.
for opts in "--at 1569897300 --time-cut 1569897300" "--at 1569897300 --random 0.1,0.1" \
	"--at 1569897300 --train-valid" "--at 1569897300 --whole" "--at 1569897300 --loo" \
	"--at 1569897300 --valid-cut 1569896400" "--valid-at 1569896400" \
	"--at 1569897300 --valid-at 1569897300" "--at 1569896400 --valid-at 1569897300" \
	"--at yesterday"; do
	test_must_fail_usage cs-mask split $opts -o "$T/x" "$T/k.cseq"
done
# Bad data: a cut after every event, no time field, events out of order.
test_must_fail cs-mask split -q --at 2019-10-02 -o "$T/x" "$T/k.cseq"
stderr_has "k.cseq: the test split is empty"
[ ! -e "$T/x.train.cseq" ] || die "a failed split left its output"
cs-cat "$T/k.cseq" | cut -f1-3,5- | cs-cat -r -o "$T/notime.cseq" || die "a stream without time"
test_must_fail cs-mask split -q --at 1569897300 -o "$T/x" "$T/notime.cseq"
stderr_has "notime.cseq: a time split needs an int64 event field 'time'"
# Swap the first two events of the first user whose first two differ in
# time (awk numbers the records as the stream does).
cs-cat "$T/k.cseq" | awk -F'\t' -v OFS='\t' '
	NR == 1 { print; next }
	$1 != u { flush(); u = $1; n = 0; r++ }
	{ ev[++n] = $0; t[n] = $4 }
	function flush(  i, x) {
		if (n >= 2 && t[1] != t[2] && !done) { x = ev[1]; ev[1] = ev[2]; ev[2] = x; done = r
			print r > "/dev/stderr" }
		for (i = 1; i <= n; i++) print ev[i]
	}
	END { flush() }' 2>"$T/rec" | cs-cat -r -o "$T/back.cseq" || die "an unsorted stream"
test_must_fail cs-mask split -q --at 1569897300 -o "$T/x" "$T/back.cseq"
stderr_has "back.cseq: record $(cat "$T/rec"): events out of time order (event 2 at"
[ ! -e "$T/x.train.cseq" ] || die "a failed split left its output"
ok "errors: conflicting options (exit 2); no test part, no time, events out of order (exit 1)"
