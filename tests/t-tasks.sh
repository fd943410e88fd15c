# The task heads end to end: purchase intention on synthetic Kaggle-format
# sessions with a planted signal (the session head must reach AUC 0.9),
# extra inputs recorded in the model, transfer from a Cloze model, the
# event head, probabilities from cs-recommend, and the errors a user meets.
. tests/lib.sh

cc -O2 -o "$T/gen-kaggle" scripts/gen-kaggle.c -lm || die "build gen-kaggle"
"$T/gen-kaggle" -n 60000 -s 3 -o "$T/events.csv" || die "gen-kaggle"
cs-ingest -q -p kaggle --by session -o "$T/raw.cseq" "$T/events.csv" || die "ingest"
cs-vocab build -q -F item,action,category -o "$T/vocab.txt" "$T/raw.cseq" || die "vocab"
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/enc.cseq" "$T/raw.cseq" || die "encode"
cs-mask split -q --random 0.15,0.15 --seed 2 -o "$T/r" "$T/enc.cseq" || die "split"
for p in train valid test; do
	cs-mask session -q --vocab "$T/vocab.txt" -o "$T/s.$p.cseq" "$T/r.$p.cseq" || die "session $p"
done
ok "purchase-intention examples from synthetic sessions"

# The session head with the action as an extra input.
cs-train -q -v "$T/vocab.txt" --head session --inputs action --epochs 4 --seed 5 \
	--valid "$T/s.valid.cseq" --log "$T/log.tsv" -o "$T/sess.bin" "$T/s.train.cseq" || die "train session"
head -1 "$T/log.tsv" | grep -q "valid_auc" || die "log lacks valid_auc"
cs-eval -q --json -m "$T/sess.bin" "$T/s.test.cseq" > "$T/sess.json" || die "eval session"
auc=$(sed 's/.*"AUC":\([0-9.]*\).*/\1/' "$T/sess.json")
awk -v a="$auc" 'BEGIN { exit !(a >= 0.9) }' || die "session AUC $auc < 0.9"
# The same metrics from the probabilities of cs-recommend and cs-eval --scores.
cs-recommend -q -m "$T/sess.bin" -v "$T/vocab.txt" -o "$T/prob.txt" "$T/s.test.cseq" || die "recommend"
n=$(cs-cat --info "$T/s.test.cseq" | awk -F'\t' '$1 == "records" { print $2 }')
expect_eq "$(wc -l < "$T/prob.txt" | tr -d ' ')" "$n" "one probability per session"
cs-cat -j "$T/s.test.cseq" | sed 's/.*"label":\([01]\).*/\1/' > "$T/labels.txt"
cut -f2 "$T/prob.txt" | paste - "$T/labels.txt" | cs-eval --scores --json > "$T/scores.json" ||
	die "eval --scores"
auc2=$(sed 's/.*"AUC":\([0-9.]*\).*/\1/' "$T/scores.json")
awk -v a="$auc" -v b="$auc2" 'BEGIN { d = a - b; exit !(d < 2e-4 && d > -2e-4) }' ||
	die "cs-recommend probabilities give AUC $auc2, cs-eval $auc"
# --json: the same keys and probabilities, an object per session.
cs-recommend -q -J -m "$T/sess.bin" -v "$T/vocab.txt" "$T/s.test.cseq" > "$T/prob.json" ||
	die "recommend --json"
same_json_tsv() {
	python3 - "$@" <<'EOF2' || die "cs-recommend --json differs from its lines: $*"
import json, sys
tsv = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
objs = [json.loads(l) for l in open(sys.argv[2])]
names = sys.argv[3:]
assert len(tsv) == len(objs) > 0, (len(tsv), len(objs))
for r, o in zip(tsv, objs):
    assert list(o) == names, o
    want = [int(v) if n == "position" else float(v) if n == "probability" else v
            for n, v in zip(names, r)]
    assert [o[n] for n in names] == want, (r, o)
EOF2
}
same_json_tsv "$T/prob.txt" "$T/prob.json" key probability
ok "session head: test AUC $auc (>= 0.9), cs-recommend agrees, also as JSON"

# Mean pooling and concatenated inputs train too.
cs-train -q -v "$T/vocab.txt" --head session --pool mean --inputs action,category \
	--combine concat --epochs 1 -o "$T/mean.bin" "$T/s.train.cseq" || die "mean, concat"
cs-eval -q -m "$T/mean.bin" "$T/s.test.cseq" | grep -q '^AUC' || die "eval mean"
ok "mean pooling, concatenated inputs"

# The model records its inputs: a stream without them is refused.
cs-cat "$T/s.test.cseq" | awk -F'\t' -v OFS='\t' '
	NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^action:/) a = i }
	{ $a = ""; sub("\t\t", "\t"); print }' | cs-cat -r -o "$T/noact.cseq" || die "drop action"
test_must_fail cs-eval -m "$T/sess.bin" "$T/noact.cseq"
stderr_has "no event field 'action'"
test_must_fail cs-eval -m "$T/sess.bin" "$T/r.test.cseq"
stderr_has "label"
test_must_fail cs-train -v "$T/vocab.txt" --head session --inputs brand -o "$T/x.bin" "$T/s.train.cseq"
stderr_has "no field 'brand'"
cs-recommend -m "$T/sess.bin" -v "$T/vocab.txt" --text "$T/prob.txt" 2> "$T/stderr"
expect_eq $? 2 "--text to a session model"
ok "errors: unlabelled data, unknown input, text to a session model"

# Transfer: pretrain a Cloze model with the action input, then a session
# head on its frozen encoder.
# (The whole event is masked, and the model predicts the action too.)
cs-mask cloze -q --dupe 2 -o "$T/cloze0.cseq" "$T/r.train.cseq" || die "cloze"
test_must_fail cs-train -v "$T/vocab.txt" --inputs action --predict-input action -o "$T/x.bin" \
	"$T/cloze0.cseq"
stderr_has "cs-mask cloze --mask-field action"
cs-mask cloze -q --dupe 2 --mask-field action -o "$T/cloze.cseq" "$T/r.train.cseq" || die "cloze"
cs-train -q -v "$T/vocab.txt" --inputs action --predict-input action --epochs 1 \
	-o "$T/pre.bin" "$T/cloze.cseq" || die "pretrain"
test_must_fail cs-recommend -m "$T/pre.bin" -v "$T/vocab.txt" "$T/r.test.cseq"
stderr_has "extra event inputs"
cs-train -q -v "$T/vocab.txt" --head session --init "$T/pre.bin" --freeze all --epochs 1 \
	-o "$T/ft.bin" "$T/s.train.cseq" || die "fine-tune"
cs-eval -q -m "$T/ft.bin" "$T/s.test.cseq" | grep -q '^AUC' || die "eval fine-tuned"
test_must_fail cs-train -v "$T/vocab.txt" --head session --init "$T/pre.bin" --inputs category \
	-o "$T/x.bin" "$T/s.train.cseq"
stderr_has "extra inputs differ"
# the message names the whole list (it named its first input only)
test_must_fail cs-train -v "$T/vocab.txt" --head session --init "$T/pre.bin" \
	--inputs category,action -o "$T/x.bin" "$T/s.train.cseq"
stderr_has "extra inputs differ from --inputs category,action"
# another vocabulary
cs-vocab build -q -F item,action --min-count 2 -o "$T/vocab2.txt" "$T/raw.cseq" || die "vocab2"
test_must_fail cs-train -v "$T/vocab2.txt" --head session --init "$T/pre.bin" -o "$T/x.bin" \
	"$T/s.train.cseq"
stderr_has "another item vocabulary"
ok "transfer: --init a Cloze encoder, --freeze, mismatches refused"

# The event head: carted items removed later (the generator's category
# return factor) as returns.
cs-mask returns -q --vocab "$T/vocab.txt" --purchase cart --return remove_from_cart \
	-o "$T/ret.cseq" "$T/enc.cseq" || die "returns"
cs-mask split -q --random 0.2,0.2 -o "$T/e" "$T/ret.cseq" || die "split returns"
cs-train -q -v "$T/vocab.txt" --head event --inputs category --pos-weight auto --epochs 2 \
	--valid "$T/e.valid.cseq" -o "$T/ev.bin" "$T/e.train.cseq" || die "train event"
cs-eval -q -m "$T/ev.bin" "$T/e.test.cseq" > "$T/ev.tsv" || die "eval event"
n=$(cs-cat -j "$T/e.test.cseq" | grep -o '"label":\[[^]]*\]' | tr -d 'label":[]' | tr ',' '\n' |
	grep -cx '[01]')
expect_eq "$(awk -F'\t' '$1 == "examples" { print $2 }' "$T/ev.tsv")" "$n" "scored events"
cs-recommend -q -m "$T/ev.bin" -v "$T/vocab.txt" "$T/e.test.cseq" > "$T/evp.txt" || die "recommend events"
expect_eq "$(wc -l < "$T/evp.txt" | tr -d ' ')" "$n" "one probability per scored event"
awk -F'\t' 'NF != 4 || $4 < 0 || $4 > 1 { exit 1 }' "$T/evp.txt" || die "event output format"
cs-recommend -q --json -m "$T/ev.bin" -v "$T/vocab.txt" "$T/e.test.cseq" > "$T/evp.json" ||
	die "recommend events --json"
same_json_tsv "$T/evp.txt" "$T/evp.json" key position item probability
test_must_fail cs-eval -m "$T/ev.bin" "$T/s.test.cseq"
stderr_has "label"
ok "event head: $n scored events, probabilities per event"
