# The experiment Makefile re-runs only what a changed knob touches; the
# nightly retrain script locks, logs, publishes atomically, keeps the
# previous model and leaves it alone on failure.
. tests/lib.sh
need_data amazon-beauty/beauty_bert4rec.txt
need_data kaggle-ecommerce-multicategory/2019-Oct_head17k.csv

# the commands make echoes are counted: not silenced by a make -s above us
unset MAKEFLAGS MFLAGS MAKELEVEL
# make's status, not grep's (which fails when make -s prints nothing else)
mk() {
	make -f scripts/experiment.mk W="$T/exp" EPOCHS=1 "$@" >"$T/mk.out" 2>&1
	set -- $?
	grep -v '^cs-ingest: .*columns' "$T/mk.out"
	return "$1"
}
mk > "$T/mk1.txt" || die "experiment"
grep -q '^AUC' "$T/exp/metrics.tsv" && grep -q '^AUC' "$T/exp/baseline.tsv" || die "experiment results"
expect_eq "$(mk | grep -c '^cs-')" 0 "commands of a second make"
mk EPOCHS=2 > "$T/mk2.txt"
expect_eq "$(grep -o '^cs-[a-z]*' "$T/mk2.txt" | tr '\n' ' ')" "cs-train cs-eval " "after EPOCHS=2"
mk EPOCHS=2 SEED=3 > "$T/mk3.txt"
# a new seed re-splits and re-trains, but ingests and encodes nothing
ran() { awk '/^cs-/ { print $1 ($1 == "cs-mask" ? " " $2 : "") }' "$1" | sort | uniq -c |
	awk '{ $1 = $1; print }' | paste -sd, -; }
expect_eq "$(ran "$T/mk3.txt")" "1 cs-eval,3 cs-mask session,1 cs-mask split,1 cs-train" "after SEED=3"
ok "experiment.mk re-runs only what depends on a changed knob"

# make -q and -n tell the truth, and change nothing.
mkq() { make -q -f scripts/experiment.mk W="$T/exp" "$@" >/dev/null 2>&1; }
mkq EPOCHS=2 SEED=3 || die "make -q after a make says stale"
mkq EPOCHS=3 SEED=3 && die "make -q misses a changed knob"
expect_eq "$(make -n -f scripts/experiment.mk W="$T/exp" EPOCHS=2 SEED=3 | grep -c '^cs-')" 0 \
	"commands of make -n when up to date"
expect_eq "$(make -n -f scripts/experiment.mk W="$T/exp" EPOCHS=3 SEED=3 | grep -o '^cs-[a-z]*' |
	tr '\n' ' ')" "cs-train cs-eval " "make -n after EPOCHS=3"
mkq EPOCHS=2 SEED=3 || die "make -n or -q recorded a knob"
[ -s "$T/exp/train.log" ] || die "no training log"
[ -e "$T/exp/model.bin.ckpt" ] && die "the checkpoint is left behind"
make -s --no-print-directory -f scripts/experiment.mk W="$T/exp" EPOCHS=2 SEED=3 compare \
	> "$T/cmp.txt" 2>/dev/null || die "make compare"
head -1 "$T/cmp.txt" | grep -q '^metric	model	baseline$' && grep -q '^AUC	[0-9.]*	[0-9.]*$' "$T/cmp.txt" ||
	{ cat "$T/cmp.txt"; die "compare"; }
mk EPOCHS=2 SEED=3 plot > /dev/null
for f in funnel length train; do [ -s "$T/exp/plots/$f.png" ] || die "plot: no $f.png"; done
ok "experiment.mk: make -n and -q, a training log, compare and plot targets"

head -3000 "$DATA/amazon-beauty/beauty_bert4rec.txt" > "$T/b.txt"
# The main job on a small head: every protocol prints the metrics and
# recommendations; sasrec (the default) and paper train on the validation
# items.
for p in sasrec paper early; do
	# shellcheck disable=SC2046
	env $([ $p = sasrec ] || echo PROTOCOL=$p) EPOCHS=1 THREADS=1 sh scripts/beauty.sh "$T/b.txt" \
		"$T/bj-$p" > "$T/bj-$p.out" 2> "$T/bj-$p.err" || { tail "$T/bj-$p.err"; die "beauty.sh PROTOCOL=$p"; }
	grep -q '^NDCG@10' "$T/bj-$p.out" && grep -q "$(printf '\t1\t')" "$T/bj-$p.out" ||
		die "beauty.sh PROTOCOL=$p output"
done
expect_eq "$(info "$T/bj-paper/beauty.train.cseq" events)" "$(info "$T/bj-paper/beauty.test.cseq" events)" \
	"paper protocol training events"
expect_eq "$(info "$T/bj-sasrec/beauty.train.cseq" events)" "$(info "$T/bj-sasrec/beauty.test.cseq" events)" \
	"sasrec protocol training events"
grep -aq sasrec-preln "$T/bj-sasrec/model.bin" || die "the default protocol trains no pre-LN causal model"
# a relative data path, read from the work directory's parent
top=$PWD
(cd "$T" && EPOCHS=1 THREADS=1 sh "$top/scripts/beauty.sh" b.txt bj-rel > bj-rel.out 2> bj-rel.err) ||
	{ tail "$T/bj-rel.err"; die "beauty.sh with a relative path"; }
grep -q '^NDCG@10' "$T/bj-rel.out" || die "beauty.sh with a relative path: no metrics"
grep -q 'PROTOCOL=sasrec' "$T/bj-sasrec.err" || die "the default protocol is not sasrec"
expect_eq "$(grep -c '^NDCG@10' "$T/bj-sasrec.out")" 2 "both metric tables"
[ "$(info "$T/bj-early/beauty.train.cseq" events)" -lt "$(info "$T/bj-early/beauty.test.cseq" events)" ] || die "early protocol holds out"
[ -s "$T/bj-early/train.log" ] || die "early protocol log"
PROTOCOL=bogus sh scripts/beauty.sh "$T/b.txt" "$T/bj-x" > /dev/null 2>&1
expect_eq "$?" 2 "beauty.sh PROTOCOL=bogus"
ok "beauty.sh, the main job, on a small head of Beauty"

# The time curve: a row per epoch and run, test figures of the best model
head -1500 "$DATA/amazon-beauty/beauty_5core_seq.txt" > "$T/b5.txt"
EPOCHS=2 RUNS="sasrec-full bert4rec-sampled sasrec-pre-sampled" THREADS=1 sh scripts/time-curve.sh "$T/b5.txt" "$T/tc" \
	> "$T/tc.out" 2> "$T/tc.err" || { tail "$T/tc.err"; die "time-curve.sh"; }
expect_eq "$(awk -F'\t' 'NR > 1 && $4 >= 0 && $4 <= 1 { n++ } END { print n + 0 }' "$T/tc/curves.tsv")" 6 \
	"time-curve.sh: a row per epoch and run"
expect_eq "$(awk -F'\t' 'NR > 1 && $4 >= 0 && $7 <= 1 && NF == 7 { n++ } END { print n + 0 }' "$T/tc/test.tsv")" 3 \
	"time-curve.sh: test figures per run"
if command -v gnuplot > /dev/null; then [ -s "$T/tc/time-curve.png" ] || die "time-curve.sh: no plot"; fi
ok "time-curve.sh on a small head of 5-core Beauty"
n=scripts/nightly-retrain.sh
sh $n -p pairs -e 1 "$T/nr" "$T/b.txt" 2> "$T/n1.err" || { cat "$T/n1.err"; die "first run"; }
first=$(readlink "$T/nr/current")
[ -s "$T/nr/current/model.bin" ] && [ -s "$T/nr/current/vocab.txt" ] || die "published files"
sleep 1
sh $n -p pairs -e 1 "$T/nr" "$T/b.txt" 2> /dev/null || die "second run"
expect_eq "$(readlink "$T/nr/previous")" "$first" "previous model kept"
second=$(readlink "$T/nr/current")
[ "$second" != "$first" ] || die "current not replaced"
# another run holds the lock: exit 75, nothing changes
flock "$T/nr/.lock" sleep 2 &
sleep 0.5
sh $n -p pairs -e 1 "$T/nr" "$T/b.txt" 2> "$T/stderr"
expect_eq $? 75 "exit status under the lock"
stderr_has "another run holds"
wait
# a failing run: exit 1, current unchanged, the log says why
sh $n -p pairs -e 1 "$T/nr" "$T/missing.txt" 2> "$T/stderr"
expect_eq $? 1 "exit status of a failed run"
stderr_has "FAILED"
expect_eq "$(readlink "$T/nr/current")" "$second" "current after a failure"
grep -q "cannot open" "$T/nr/logs/"*.log || die "log lacks the error"
ls "$T/nr/runs" | grep -q '^\.work' && die "work directory left behind"
ok "nightly-retrain.sh: publish, keep previous, lock, failure"

# Relative DIR and EXPORT, silent on success (cron mails any output), a
# training log kept with the model, logs pruned to -l.
mkdir -p "$T/rel"
cp "$T/b.txt" "$T/rel/b.txt"
(cd "$T/rel" && sh "$TOP/$n" -p pairs -e 1 -l 2 out b.txt) > "$T/rel.out" 2> "$T/rel.err" ||
	{ cat "$T/rel.err"; die "relative paths"; }
[ -s "$T/rel.out" ] || [ -s "$T/rel.err" ] && { cat "$T/rel.out" "$T/rel.err"; die "output on success"; }
[ -s "$T/rel/out/current/model.bin" ] && [ -s "$T/rel/out/current/train.log" ] || die "relative: published files"
ls "$T/rel/out/current" | grep -q ckpt && die "checkpoint published"
sleep 1
(cd "$T/rel" && sh "$TOP/$n" -p pairs -e 1 -l 2 out b.txt) 2>/dev/null || die "relative, second run"
sleep 1
(cd "$T/rel" && sh "$TOP/$n" -p pairs -e 1 -l 2 -v out b.txt) 2> "$T/stderr" || die "relative, third run"
stderr_has "published"
expect_eq "$(ls "$T/rel/out/logs" | wc -l | tr -d ' ')" 2 "logs kept with -l 2"
ok "nightly-retrain.sh: relative paths, silent on success, logs pruned"

# The guard: a model that does not beat the current one by -g is not published.
cur=$(readlink "$T/rel/out/current")
sleep 1
(cd "$T/rel" && sh "$TOP/$n" -p pairs -e 1 -g 0.5 out b.txt) 2> "$T/stderr"
expect_eq $? 3 "exit status of a model held back"
stderr_has "not published: NDCG@10"
expect_eq "$(readlink "$T/rel/out/current")" "$cur" "current after the guard"
(cd "$T/rel" && sh "$TOP/$n" -p pairs -e 1 -g -1 out b.txt) 2>/dev/null || die "-g -1 publishes"
[ "$(readlink "$T/rel/out/current")" != "$cur" ] || die "not published with -g -1"
(cd "$T/rel" && sh "$TOP/$n" -g x out b.txt) 2>/dev/null
expect_eq $? 2 "-g x"
ok "nightly-retrain.sh: the -g guard against the current model's metrics"

# make install puts the programs, man pages and the cron script in place.
make -s install DESTDIR="$T/inst" PREFIX=/usr/local > /dev/null || die "make install"
for f in bin/cs-stats bin/cs-export bin/cs-nightly-retrain share/man/man1/cs-stats.1 \
	share/man/man1/cs-export.1; do
	[ -f "$T/inst/usr/local/$f" ] || die "make install: no $f"
done
ok "make install"
