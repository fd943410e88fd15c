#!/bin/sh
# Kaggle "eCommerce behavior data" (or scripts/gen-kaggle.c output) end to
# end: next-item recommendation over sessions with and without the action
# variable, and purchase intention with and without Cloze pretraining, next
# to simple baselines on the same split.
#
#   sh scripts/kaggle-tasks.sh EXPORT.csv [workdir]
#
# Environment: EPOCHS (20), SEED (1), THREADS (all cores), MIN_LEN (2:
# shorter sessions are dropped), PARTS ("recommend intent": which parts to
# run). Prints a TSV table per part on stdout.
usage="usage: sh scripts/kaggle-tasks.sh EXPORT.csv [workdir]"
[ $# -ge 1 ] && [ -f "$1" ] || { echo "$usage" >&2; exit 2; }
csv=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
. "$(dirname "$0")/tasks-lib.sh"
work=${2:-kaggle-run}
mkdir -p "$work"
cd "$work"

log "ingest by session, vocabularies of item and action"
cs-ingest -q -p kaggle --by session --min-len "${MIN_LEN:-2}" -o raw.cseq "$csv"
cs-vocab build -q -F item,action -o vocab.txt raw.cseq
cs-vocab encode -q -v vocab.txt -o enc.cseq raw.cseq

case " ${PARTS:-recommend intent} " in *" recommend "*)
log "recommendation: leave-one-out, Cloze with and without the action"
cs-mask split -q -o loo enc.cseq
cs-mask cloze -q --seed "$SEED" -o cloze.cseq loo.train.cseq
# the action of a masked event is masked too: the next event's is unknown
cs-mask cloze -q --seed "$SEED" --mask-field action -o cloze-action.cseq loo.train.cseq
for m in item action; do
	in=""; ex=cloze.cseq
	[ $m = action ] && in="--inputs action" && ex=cloze-action.cseq
	# shellcheck disable=SC2086
	cs-train -q -v vocab.txt $in --epochs "$EPOCHS" --seed "$SEED" $threads \
		--valid loo.valid.cseq -o "rec-$m.bin" "$ex"
	cs-eval -q -m "rec-$m.bin" -n 0 -k 10 loo.test.cseq > "rec-$m.tsv"
done
printf 'task\tinputs\tRecall@10\tNDCG@10\tMRR\tsessions\n'
for m in item action; do
	awk -F'\t' -v m="$m" '{ v[$1] = $2 } END { printf "recommendation\t%s\t%s\t%s\t%s\t%s\n",
		m == "item" ? "item" : "item+action", v["HR@10"], v["NDCG@10"], v["MRR"], v["users"] }' \
		"rec-$m.tsv"
done
echo
;; esac
case " ${PARTS:-recommend intent} " in *" intent "*)

log "purchase intention: random split of sessions, events before the first purchase"
cs-mask split -q --random 0.1,0.1 --seed "$SEED" -o r enc.cseq
for p in train valid test; do
	cs-mask session -q --vocab vocab.txt -o "s.$p.cseq" "r.$p.cseq"
done
header
baselines purchase session s.train.cseq s.test.cseq
# shellcheck disable=SC2086
cs-train -q -v vocab.txt --head session --inputs action --epochs "$EPOCHS" --seed "$SEED" \
	$threads --valid s.valid.cseq -o intent.bin s.train.cseq
cs-eval -q -m intent.bin s.test.cseq > intent.tsv
row purchase "session head, from scratch" intent.tsv
# Pretraining sees the training sessions only, whole.
cs-mask cloze -q --seed "$SEED" --mask-field action -o pre-cloze.cseq r.train.cseq
# shellcheck disable=SC2086
cs-train -q -v vocab.txt --inputs action --epochs "$EPOCHS" --seed "$SEED" $threads \
	-o pre.bin pre-cloze.cseq
# shellcheck disable=SC2086
cs-train -q -v vocab.txt --head session --init pre.bin --freeze 1 --epochs "$EPOCHS" \
	--seed "$SEED" $threads --valid s.valid.cseq -o intent-pre.bin s.train.cseq
cs-eval -q -m intent-pre.bin s.test.cseq > intent-pre.tsv
row purchase "session head, Cloze-pretrained" intent-pre.tsv
;; esac
