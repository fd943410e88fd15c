# Causal (SASRec) models end to end on a small planted-pattern catalogue:
# next-item examples, the full softmax and the sampled losses, evaluation
# and recommendations at the last event, heads and transfer on the causal
# encoder, the model file's architecture, resume, and the errors a user
# meets.
. tests/lib.sh

# 600 users over 120 items; each history walks the catalogue in steps of
# one from a start that depends on the user, so the next item is implied.
walks

# Next-item examples: targets are the following items, windows cover the
# sequence; a history of 25 events with --max-len 10 makes windows ending
# at 25, 15 and the first at 0.
printf 'user:seq:string\titem:event:string\n' > "$T/one.txt"
awk 'BEGIN { for (j = 1; j <= 25; j++) printf "u\tp%d\n", j }' >> "$T/one.txt"
cs-cat -r -o "$T/one.cseq" "$T/one.txt" || die "cs-cat -r one"
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/one.enc" "$T/one.cseq" || die "encode one"
cs-mask next -q --max-len 10 -o "$T/one.next" "$T/one.enc" || die "cs-mask next"
expect_eq "$(info "$T/one.next" records) $(info "$T/one.next" events)" "3 30" "windows of one history"
expect_eq "$(cs-cat --info "$T/one.next" | awk -F'\t' '$1 == "meta" && $2 == "split" { print $3 }')" next \
	"split metadata"
# every target is the id of the item after the event's in the history
cs-cat -H "$T/one.enc" | cut -f2 > "$T/one.ids"
cs-cat -H "$T/one.next" | awk -F'\t' 'NR == FNR { nxt[prev] = $1; prev = $1; next }
	NF >= 3 { if (nxt[$2] != $3) bad++; n++ }
	END { exit !(n == 30 && bad == 0) }' "$T/one.ids" - || die "next-item targets"
cs-mask next -q -o "$T/next.cseq" "$T/s.train.cseq" || die "cs-mask next on the split"
# one window per user (histories are short): one target per training event but the first
expect_eq "$(info "$T/next.cseq" records)" 600 "next-item examples"
expect_eq "$(info "$T/next.cseq" events)" $(( $(info "$T/s.train.cseq" events) - 600 )) "next-item targets"
test_must_fail_usage cs-mask next --dupe 3 -o "$T/x" "$T/s.train.cseq"
test_must_fail_usage cs-mask next --mask-prob 0.2 -o "$T/x" "$T/s.train.cseq"
ok "next-item examples"

# Long windows: a new model's length follows the examples' window length
# (metadata max_len) unless --max-len is given, so no target is lost.
cs-mask next -q --max-len 60 -o "$T/w60.cseq" "$T/s.train.cseq" || die "cs-mask next --max-len 60"
expect_eq "$(cs-cat --info "$T/w60.cseq" | awk -F'\t' '$1 == "meta" && $2 == "max_len" { print $3 }')" 60 \
	"window length in the metadata"
W="-v $T/vocab.txt --hidden 16 --layers 1 --heads 1 --epochs 1 -j 1 --verbose -o $T/w.bin"
cs-train $W "$T/w60.cseq" 2> "$T/w60.err" || die "cs-train on windows of 60"
grep -q 'max-len=60 ' "$T/w60.err" || die "model length does not follow the windows: $(cat "$T/w60.err")"
grep -q 'cut to their last' "$T/w60.err" && die "windows of 60 were cut"
cs-train $W --max-len 20 "$T/w60.cseq" 2> "$T/w20.err" || die "cs-train --max-len 20"
grep -q 'max-len=20 ' "$T/w20.err" || die "--max-len 20 not kept"
cs-train $W "$T/next.cseq" 2> "$T/w50.err" || die "cs-train on windows of 50"
grep -q 'max-len=50 ' "$T/w50.err" || die "default length changed for windows of 50"
cs-train $W < "$T/w60.cseq" 2> "$T/wstdin.err" || die "cs-train on windows of 60 from stdin"
grep -q 'give --max-len 60' "$T/wstdin.err" || die "no warning for long windows on stdin"
ok "model length follows long windows unless --max-len says"

OPTS="-q -v $T/vocab.txt --hidden 32 --layers 1 --heads 1 --max-len 16 --batch 32
	--lr 3e-3 --warmup 20 --dropout 0.1 --attn-dropout 0.1 --patience 20 -j 1"
for loss in full sampled gbce; do
	# gBCE first drives every score down, then ranks: it needs more epochs
	# (on pre-LN blocks, the default, valid NDCG@10 0.87 after 30, 0.98 after 45)
	neg=; ep=12; [ $loss = full ] || neg="--negatives 20"; [ $loss = gbce ] && ep=45
	cs-train $OPTS --loss $loss $neg --epochs $ep --eval-every 3 --valid "$T/s.valid.cseq" --log "$T/$loss.tsv" \
		-o "$T/$loss.bin" "$T/next.cseq" || die "cs-train --loss $loss"
	awk -F'\t' 'NR == 2 { l0 = $3; n0 = $6 } NR > 2 { l = $3; n = $6 }
		END { printf "%s: loss %.3f -> %.3f, valid NDCG@10 %.3f -> %.3f\n", L, l0, l, n0, n
		      exit !(l < 0.5 * l0 && n > 0.9) }' L=$loss "$T/$loss.tsv" ||
		die "--loss $loss did not learn"
	hr=$(cs-eval -q -m "$T/$loss.bin" -k 10 "$T/s.test.cseq" | awk -F'\t' '$1 == "HR@10" { print $2 }')
	# chance is 10 of 120 items; the pattern makes the next item easy
	awk -v h="$hr" 'BEGIN { exit !(h > 0.5) }' || die "--loss $loss: test HR@10 $hr too low"
	ok "causal model, --loss $loss: learns, test HR@10 $hr"
done
# Pre-LN blocks (SASRec's layout): learn as well, recommend, and say so in
# the model file, whose tensors are the final LayerNorm's, not the output
# transform's.
cs-train $OPTS --norm pre --epochs 12 -o "$T/preln.bin" "$T/next.cseq" || die "cs-train --norm pre"
hr=$(cs-eval -q -m "$T/preln.bin" -k 10 "$T/s.test.cseq" | awk -F'\t' '$1 == "HR@10" { print $2 }')
awk -v h="$hr" 'BEGIN { exit !(h > 0.5) }' || die "--norm pre: test HR@10 $hr too low"
grep -aq 'sasrec-preln' "$T/preln.bin" || die "no arch sasrec-preln in the model file"
grep -aq 'fln_w' "$T/preln.bin" || die "no final LayerNorm in the pre-LN model file"
grep -aq 'headln_w' "$T/preln.bin" && die "an output transform in the pre-LN model file"
printf 'a\tp10 p11 p12 p13\n' |
	cs-recommend -q -m "$T/preln.bin" -v "$T/vocab.txt" --text -k 1 -x - > "$T/preln.rec" ||
	die "cs-recommend, pre-LN"
expect_eq "$(cut -f3 "$T/preln.rec")" p14 "pre-LN: top item after p10..p13"
# causal models are pre-LN unless --norm post says
grep -aq 'sasrec-preln' "$T/full.bin" || die "a causal model is not pre-LN by default"
cs-train $OPTS --norm post --epochs 1 -o "$T/post.bin" "$T/next.cseq" || die "cs-train --norm post"
grep -aq 'sasrec-preln' "$T/post.bin" && die "--norm post trained pre-LN blocks"
grep -aq 'headln_w' "$T/post.bin" || die "--norm post: no output transform"
test_must_fail_usage cs-train $OPTS --norm middle --epochs 1 -o "$T/x.bin" "$T/next.cseq"
test_must_fail_usage cs-train $OPTS --norm post --init "$T/preln.bin" --epochs 1 -o "$T/x.bin" "$T/next.cseq"
ok "pre-LN blocks: learn, test HR@10 $hr, recommend, named in the model file"

cs-train $OPTS --loss sampled --negatives 20 --sampler pop --epochs 2 -o "$T/pop.bin" "$T/next.cseq" ||
	die "--sampler pop"
cs-train $OPTS --loss sampled --negatives 20 --sampler batch --epochs 2 -o "$T/batch.bin" "$T/next.cseq" ||
	die "--sampler batch"
cs-train $OPTS --loss sampled --negatives 20 --sampler pop --logq off --epochs 2 -o "$T/popraw.bin" \
	"$T/next.cseq" || die "--logq off"
cmp -s "$T/pop.bin" "$T/popraw.bin" && die "--logq off trained the same model as the logQ-corrected run"
test_must_fail_usage cs-train $OPTS --loss sampled --logq off --epochs 1 -o "$T/x.bin" "$T/next.cseq"
test_must_fail_usage cs-train $OPTS --loss sampled --sampler pop --logq no --epochs 1 -o "$T/x.bin" "$T/next.cseq"
ok "popularity and in-batch samplers, with and without the logQ correction"

# The model file says it is a causal model: arch sasrec, which older
# readers refuse rather than run as BERT4Rec.
grep -aq 'sasrec' "$T/full.bin" || die "no arch sasrec in the model file"

# Recommendations score the last event, with no [MASK]: after p10..p13, p14.
printf 'a\tp10 p11 p12 p13\n' > "$T/hist.txt"
cs-recommend -q -m "$T/full.bin" -v "$T/vocab.txt" --text -k 3 -x "$T/hist.txt" > "$T/rec.txt" ||
	die "cs-recommend"
expect_eq "$(awk -F'\t' '$2 == 1 { print $3 }' "$T/rec.txt")" p14 "top item after p10..p13"
# A history longer than the model keeps its last 16 events (not 15).
awk 'BEGIN { printf "b\t"; for (j = 0; j < 30; j++) printf "p%d ", j; print "" }' > "$T/long.txt"
cs-recommend -m "$T/full.bin" -v "$T/vocab.txt" --text -k 1 -x "$T/long.txt" > "$T/long.rec" 2> "$T/stderr" ||
	die "cs-recommend long"
stderr_has "kept their most recent ones"
expect_eq "$(cut -f3 "$T/long.rec")" p30 "top item after p0..p29"
ok "recommendations of a causal model"

# The same seed and data give the same model; a resume after an
# interruption continues to it.
cs-train $OPTS --loss sampled --negatives 20 --epochs 3 -o "$T/a.bin" "$T/next.cseq" || die "train a"
cs-train $OPTS --loss sampled --negatives 20 --epochs 3 -o "$T/b.bin" "$T/next.cseq" || die "train b"
cmp -s "$T/a.bin" "$T/b.bin" || die "sampled training is not deterministic"
# interrupted CKPT CMD...: CMD in the background, killed once CKPT is
# written; again if it had already finished (a fast machine: its last
# checkpoint leaves nothing to resume).
interrupted() {
	ck=$1; shift
	for _try in 1 2 3 4 5; do
		rm -f "$ck"
		"$@" 2>/dev/null &
		pid=$!
		wait_file "$ck" || die "no checkpoint written"
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null || return 0
	done
	die "the run finished before each of 5 kills"
}
interrupted "$T/c.bin.ckpt" cs-train $OPTS --loss sampled --negatives 20 --epochs 3 --checkpoint-every 5 \
	-o "$T/c.bin" "$T/next.cseq"
cs-train -q -v "$T/vocab.txt" -j 1 --resume "$T/c.bin.ckpt" -o "$T/c.bin" "$T/next.cseq" || die "resume"
cmp -s "$T/a.bin" "$T/c.bin" || die "resumed sampled run differs"
# the checkpoint keeps --logq off: a resumed run goes on without the correction
P="$OPTS --loss sampled --negatives 20 --sampler pop --logq off --epochs 3"
cs-train $P -o "$T/d.bin" "$T/next.cseq" || die "train d"
interrupted "$T/e.bin.ckpt" cs-train $P --checkpoint-every 5 -o "$T/e.bin" "$T/next.cseq"
grep -aq 'train.logq' "$T/e.bin.ckpt" || die "the checkpoint does not record --logq"
cs-train -q -v "$T/vocab.txt" -j 1 --resume "$T/e.bin.ckpt" -o "$T/e.bin" "$T/next.cseq" || die "resume e"
cmp -s "$T/d.bin" "$T/e.bin" || die "resumed --logq off run differs"
ok "deterministic, and --resume continues to the same model"

# Heads and transfer on the causal encoder: pretrain next-item (and next
# action) on synthetic sessions, then a purchase-intention head on it.
cc -O2 -o "$T/gen-kaggle" scripts/gen-kaggle.c -lm || die "build gen-kaggle"
"$T/gen-kaggle" -n 60000 -s 3 -o "$T/events.csv" || die "gen-kaggle"
cs-ingest -q -p kaggle --by session -o "$T/kraw.cseq" "$T/events.csv" || die "ingest"
cs-vocab build -q -F item,action -o "$T/kvocab.txt" "$T/kraw.cseq" || die "vocab"
cs-vocab encode -q -v "$T/kvocab.txt" -o "$T/kenc.cseq" "$T/kraw.cseq" || die "encode"
cs-mask split -q --random 0.15,0.15 --seed 2 -o "$T/kr" "$T/kenc.cseq" || die "split"
for p in train valid test; do
	cs-mask session -q --vocab "$T/kvocab.txt" -o "$T/ks.$p.cseq" "$T/kr.$p.cseq" || die "session $p"
done
cs-mask next -q --mask-field action -o "$T/knext.cseq" "$T/kr.train.cseq" || die "next --mask-field"
cs-train -q -v "$T/kvocab.txt" --inputs action --predict-input action --norm post --loss sampled \
	--negatives 64 --epochs 2 -j 1 -o "$T/pre.bin" "$T/knext.cseq" || die "pretrain causal"
cs-train -q -v "$T/kvocab.txt" --head session --init "$T/pre.bin" --freeze 1 --epochs 3 -j 1 \
	--valid "$T/ks.valid.cseq" -o "$T/intent.bin" "$T/ks.train.cseq" || die "session head on causal"
grep -aq sasrec "$T/intent.bin" || die "the session model lost the causal encoder"
grep -aq sasrec-preln "$T/intent.bin" && die "the session model's encoder became pre-LN"
# the same on a pre-LN encoder (the default), which the session model keeps
cs-train -q -v "$T/kvocab.txt" --inputs action --loss sampled --negatives 64 \
	--epochs 2 -j 1 -o "$T/prepre.bin" "$T/knext.cseq" || die "pretrain pre-LN"
cs-train -q -v "$T/kvocab.txt" --head session --init "$T/prepre.bin" --epochs 3 -j 1 \
	--valid "$T/ks.valid.cseq" -o "$T/intentpre.bin" "$T/ks.train.cseq" || die "session head on pre-LN"
grep -aq sasrec-preln "$T/intentpre.bin" || die "the session model lost the pre-LN encoder"
pauc=$(cs-eval -q --json -m "$T/intentpre.bin" "$T/ks.test.cseq" | sed 's/.*"AUC":\([0-9.]*\).*/\1/')
awk -v a="$pauc" 'BEGIN { exit !(a >= 0.85) }' || die "session AUC $pauc < 0.85 on the pre-LN encoder"
auc=$(cs-eval -q --json -m "$T/intent.bin" "$T/ks.test.cseq" | sed 's/.*"AUC":\([0-9.]*\).*/\1/')
awk -v a="$auc" 'BEGIN { exit !(a >= 0.85) }' || die "session AUC $auc < 0.85 on the causal encoder"
ok "session head on pretrained causal encoders: test AUC $auc (post-LN), $pauc (pre-LN)"

# Errors: examples of the other kind, sampled options without a sampled loss.
cs-mask cloze -q --dupe 1 --max-len 16 -o "$T/cloze.cseq" "$T/s.train.cseq" || die "cloze"
test_must_fail cs-train $OPTS --attention causal --epochs 1 -o "$T/x.bin" "$T/cloze.cseq"
stderr_has "Cloze examples for a causal model: make them with cs-mask next"
test_must_fail cs-train $OPTS --attention bidirectional --epochs 1 -o "$T/x.bin" "$T/next.cseq"
stderr_has "next-item examples for a bidirectional model"
# a causal encoder under a Cloze head is refused the same way
test_must_fail cs-train $OPTS --init "$T/full.bin" --epochs 1 -o "$T/x.bin" "$T/cloze.cseq"
test_must_fail_usage cs-train $OPTS --negatives 10 --epochs 1 -o "$T/x.bin" "$T/next.cseq"
test_must_fail_usage cs-train $OPTS --loss gbce --sampler pop --epochs 1 -o "$T/x.bin" "$T/next.cseq"
test_must_fail_usage cs-train $OPTS --loss bogus --epochs 1 -o "$T/x.bin" "$T/next.cseq"
test_must_fail_usage cs-train $OPTS --gbce-t 0.5 --epochs 1 -o "$T/x.bin" "$T/next.cseq"
[ -e "$T/x.bin" ] && die "a refused run wrote a model"
ok "usage errors"
