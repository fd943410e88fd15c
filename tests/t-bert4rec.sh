# BERT4Rec end to end on a small planted-pattern catalogue: split, Cloze
# examples, training that must learn (loss falls, validation metrics rise),
# evaluation, recommendations, determinism, --resume after a kill, and the
# errors a user meets.
. tests/lib.sh

# 600 users over 120 items; each history walks the catalogue in steps of
# one from a start that depends on the user, so the next item is implied.
walks
for p in train valid test; do [ -s "$T/s.$p.cseq" ] || die "no $p split"; done
expect_eq "$(cs-cat -H "$T/s.test.cseq" | cut -f1 | grep . | sort -u | wc -l | tr -d ' ')" 600 "test histories"
# --train-valid: training gets the test histories (validation item kept).
cs-mask split -q --train-valid -o "$T/tv" "$T/enc.cseq" || die "split --train-valid"
expect_eq "$(cs-cat "$T/tv.train.cseq" | cut -f1,2 | md5sum)" "$(cs-cat "$T/s.test.cseq" | cut -f1,2 | md5sum)" \
	"--train-valid training = test histories"
cmp -s "$T/tv.valid.cseq" "$T/s.valid.cseq" || die "--train-valid changed validation"
test_must_fail_usage cs-mask split --train-valid --time-cut 300000 -o "$T/x" "$T/enc.cseq"
# ... and cs-train warns when validating on items it trains on.
cs-mask cloze -q --dupe 1 --max-len 16 -o "$T/tvc.cseq" "$T/tv.train.cseq" || die "cloze of --train-valid"
tv() { cs-train -q -v "$T/vocab.txt" --hidden 16 --layers 1 --max-len 16 --epochs 1 -j 1 \
	-o "$T/tvm.bin" "$@" "$T/tvc.cseq" 2> "$T/stderr" || die "cs-train on --train-valid examples"; }
tv --valid "$T/s.valid.cseq"
stderr_has "validation items are trained on"
tv
[ -s "$T/stderr" ] && die "warning without --valid"
ok "leave-one-out split"

# Time cut by the first event: users 0-199 train, 200-299 validate, 300- test.
cs-mask split -q --time-cut 300000 --valid-cut "1970-01-03 07:33:20" -o "$T/tc" "$T/enc.cseq" || die "time split"
expect_eq "$(info "$T/tc.train.cseq" records) $(info "$T/tc.valid.cseq" records) $(info "$T/tc.test.cseq" records)" "200 100 300" \
	"time split sizes"
ok "time split"

cs-mask cloze -q --dupe 4 --mask-prob 0.3 --max-len 16 -o "$T/train.cseq" "$T/s.train.cseq" || die "cloze"
# every masked position holds [MASK] (id 1) and a real target
cs-cat -H "$T/train.cseq" | awk -F'\t' 'NF < 2 { next } $NF != 0 && $2 != 1 { bad++ } $NF != 0 { m++ }
	END { exit !(m > 0 && bad == 0) }' || die "cloze masking"
ok "Cloze examples"

OPTS="-q -v $T/vocab.txt --hidden 32 --layers 1 --heads 2 --max-len 16 --batch 32
	--lr 3e-3 --warmup 20 --dropout 0.1 --attn-dropout 0.1 --patience 20 -j 1"
train() { cs-train $OPTS "$@" "$T/train.cseq"; }
train --epochs 15 --valid "$T/s.valid.cseq" --log "$T/log.tsv" -o "$T/m.bin" || die "cs-train"
[ -s "$T/m.bin" ] || die "no model"
awk -F'\t' 'NR == 2 { l0 = $3; n0 = $6 } NR > 2 { l = $3; n = $6 }
	END { printf "loss %.3f -> %.3f, valid NDCG@10 %.3f -> %.3f\n", l0, l, n0, n
	      exit !(l < 0.8 * l0 && n > n0 + 0.1) }' "$T/log.tsv" || die "training did not learn"
ok "training: the loss falls and validation NDCG@10 rises"

cs-eval -q -m "$T/m.bin" --json "$T/s.test.cseq" > "$T/eval.json" || die "cs-eval"
cs-eval -q -m "$T/m.bin" -k 10 "$T/s.test.cseq" > "$T/eval.tsv" || die "cs-eval tsv"
hr=$(awk -F'\t' '$1 == "HR@10" { print $2 }' "$T/eval.tsv")
# chance is 10 of 120 items; the pattern makes the next item easy
awk -v h="$hr" 'BEGIN { exit !(h > 0.5) }' || die "test HR@10 $hr too low"
grep -q '"sampled"' "$T/eval.json" || die "no sampled metrics in JSON"
ok "test HR@10 $hr (full ranking)"

printf 'a\tp10 p11 p12 p13\nb\tp50 nosuch p51\n' > "$T/hist.txt"
cs-recommend -m "$T/m.bin" -v "$T/vocab.txt" --text -k 3 -x "$T/hist.txt" > "$T/rec.txt" 2> "$T/rec.err" ||
	die "cs-recommend"
expect_eq "$(wc -l < "$T/rec.txt" | tr -d ' ')" 6 "recommendation lines"
expect_eq "$(awk -F'\t' '$1 == "a" && $2 == 1 { print $3 }' "$T/rec.txt")" p14 "top new item after p10..p13"
grep -q "hist.txt:2: unknown item 'nosuch' skipped" "$T/rec.err" || die "unknown item not reported"
cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 5 -x "$T/s.test.cseq" > "$T/rec2.txt" || die "from stream"
expect_eq "$(wc -l < "$T/rec2.txt" | tr -d ' ')" 3000 "stream recommendations"
ok "recommendations from text and from a stream"

# A history's key is a sequence-level field: user, else session (an
# event-level user is no key), else the record's number.
printf 'session:seq:string\tuser:event:string\titem:event:string\ns1\tu1\tp10\ns1\tu1\tp11\n' |
	cs-cat -r -o "$T/keyed.cseq" || die "keyed stream"
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/keyed.enc.cseq" "$T/keyed.cseq" || die "encode keyed"
expect_eq "$(cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 1 "$T/keyed.enc.cseq" | cut -f1)" \
	s1 "key of a session stream with an event-level user"
expect_eq "$(cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 1 --key session \
	"$T/keyed.enc.cseq" | cut -f1)" s1 "--key session"
test_must_fail cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" --key user "$T/keyed.enc.cseq"
stderr_has "stream has no sequence field 'user'"
ok "the keys of a stream's histories"

# Every scoring kernel this CPU runs gives the same lines, scores included.
for k in c fp32 avx512 bf16 amx; do
	CS_KERNEL=$k cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" -k 5 -x "$T/s.test.cseq" \
		> "$T/rec-$k.txt" 2> "$T/stderr"; rc=$?
	if [ $rc -eq 1 ] && grep -q "needs a CPU feature" "$T/stderr"; then
		echo "# kernel $k: not on this CPU"
		continue
	fi
	[ $rc -eq 0 ] || { cat "$T/stderr" >&2; die "CS_KERNEL=$k"; }
	cmp -s "$T/rec2.txt" "$T/rec-$k.txt" || die "kernel $k recommends otherwise"
done
CS_KERNEL=nonesuch cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" "$T/s.test.cseq" 2> "$T/stderr"
expect_eq $? 2 "exit status of CS_KERNEL=nonesuch"
stderr_has "invalid value 'nonesuch' in CS_KERNEL"
ok "the same recommendations from every kernel"

# The same seed and threads give the same model, bit for bit.
train --epochs 2 -o "$T/a.bin" && train --epochs 2 -o "$T/b.bin" || die "train twice"
cmp -s "$T/a.bin" "$T/b.bin" || die "same seed, different models"
ok "deterministic training"

# Killed and resumed, training ends where an uninterrupted run does.
cs-train $OPTS --epochs 30 --checkpoint-every 5 --checkpoint "$T/k.ckpt" -o "$T/k.bin" \
	"$T/train.cseq" &
pid=$!
sleep 1
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 1 ]; then
	[ -s "$T/k.ckpt" ] || die "no checkpoint after SIGTERM"
	cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/k.ckpt" --checkpoint "$T/k.ckpt" -o "$T/k.bin" "$T/train.cseq" || die "resume"
	train --epochs 30 -o "$T/full.bin" || die "uninterrupted run"
	cmp -s "$T/k.bin" "$T/full.bin" || die "resumed model differs from an uninterrupted run"
	ok "SIGTERM writes a checkpoint; --resume reaches the same model"
else
	echo "skip: training ended (status $rc) before the kill"
fi

# Resumed after its best and never improving on it, a run still writes
# the best model to its own -o: the file the uninterrupted run left.
# Stopped early by --patience 1, the last checkpoint is the best epoch's
# own (its weights are the best); by --patience 2, one epoch later, with
# the best model's weights inside (train.best_params).
for p in 1 2; do
	train --lr 3e-2 --epochs 12 --patience $p --valid "$T/s.valid.cseq" --log "$T/es.tsv" \
		-o "$T/es.bin" || die "--patience $p"
	if [ "$(tail -1 "$T/es.tsv" | cut -f9)" != 0 ] || [ "$(wc -l < "$T/es.tsv")" -ge 13 ]; then
		echo "skip: --patience $p did not stop early"
		continue
	fi
	n=$(grep -ac train.best_params "$T/es.bin.ckpt")
	[ "$n" = $((p - 1)) ] || die "--patience $p: train.best_params $n times in the checkpoint"
	rm -f "$T/new.bin"
	cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/es.bin.ckpt" --valid "$T/s.valid.cseq" \
		-o "$T/new.bin" "$T/train.cseq" || die "resume of --patience $p"
	[ -e "$T/new.bin" ] || die "--patience $p: a resume that never improved wrote no model"
	cmp -s "$T/new.bin" "$T/es.bin" || die "--patience $p: the resumed run's model is not the best"
	ok "--patience $p: a resume to a new -o that never improves writes the checkpoint's best"
done

# Bad input: each a clear message and exit 1.
cs-vocab build -q -o "$T/vocab2.txt" --max-size 60 "$T/raw.cseq" || die "vocab2"
cs-vocab encode -q -v "$T/vocab2.txt" -o "$T/enc2.cseq" "$T/raw.cseq" || die "encode2"
cs-mask split -q -o "$T/o" "$T/enc2.cseq" || die "split2"
test_must_fail cs-eval -q -m "$T/m.bin" "$T/o.test.cseq"
stderr_has "another item vocabulary"
test_must_fail cs-train -q -v "$T/vocab.txt" -o "$T/x.bin" "$T/s.train.cseq"
stderr_has "cs-mask cloze"
test_must_fail cs-mask cloze -q -o "$T/x.cseq" "$T/raw.cseq"
stderr_has "cs-vocab"
test_must_fail cs-train -q -v "$T/vocab.txt" -o "$T/x.bin" "$T/raw.cseq"
stderr_has "encode the stream"
[ ! -e "$T/x.bin" ] || die "a failed run left a model"
: > "$T/empty.txt"
printf 'user:seq:string\titem:event:string\n' | cs-cat -r -o "$T/none.cseq" || die "empty stream"
test_must_fail cs-mask split -q -o "$T/n" "$T/none.cseq"
stderr_has "split is empty"
[ ! -e "$T/n.train.cseq" ] || die "failed split left files"
cp "$T/m.bin" "$T/new.bin"
printf '\377' | dd of="$T/new.bin" bs=1 seek=4 conv=notrunc 2>/dev/null
test_must_fail cs-eval -q -m "$T/new.bin" "$T/s.test.cseq"
stderr_has "newer"
cp "$T/m.bin" "$T/bad.bin"
printf 'x' | dd of="$T/bad.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null
test_must_fail cs-recommend -q -m "$T/bad.bin" -v "$T/vocab.txt" "$T/s.test.cseq"
stderr_has "checksum"
head -c 3000 "$T/m.bin" > "$T/short.bin"
test_must_fail cs-eval -q -m "$T/short.bin" "$T/s.test.cseq"
stderr_has "short.bin"
ok "bad input: other vocabulary, wrong stream kind, empty split, newer, corrupt and truncated models"

# A history longer than the model's length keeps its most recent events.
awk 'BEGIN { printf "long\t"; for (j = 0; j < 40; j++) printf "p%d ", j; print ""
	     printf "long\t"; for (j = 25; j < 40; j++) printf "p%d ", j; print "" }' > "$T/long.in"
cs-recommend -m "$T/m.bin" -v "$T/vocab.txt" --text -k 5 "$T/long.in" > "$T/long.txt" 2> "$T/long.err" ||
	die "long history"
grep -q "1 histories longer than 15 items kept their most recent" "$T/long.err" ||
	die "truncation not reported"
[ "$(sed -n 1,5p "$T/long.txt")" = "$(sed -n 6,10p "$T/long.txt")" ] ||
	die "a long history scored unlike its last 15 items"
ok "long histories keep their most recent items"

test_must_fail_usage cs-train -o "$T/x.bin" "$T/train.cseq"
test_must_fail_usage cs-eval "$T/s.test.cseq"
test_must_fail_usage cs-recommend -m "$T/m.bin"
test_must_fail_usage cs-mask frobnicate
cs-train --help > /dev/null && cs-eval --help > /dev/null && cs-recommend --help > /dev/null &&
	cs-mask --help > /dev/null || die "--help"
ok "usage errors exit 2, --help exits 0"
