#!/bin/sh
# The main job: a next-item recommender on Amazon Beauty from the raw file
# to recommendations. Installs what it needs, builds cs, ingests, builds the
# vocabulary, splits leave-one-out, makes training examples, trains,
# evaluates (full ranking and 100 popularity-sampled negatives) and prints
# a few recommendations.
#
#   sh scripts/beauty.sh [beauty.txt] [workdir]
#
# beauty.txt is the BERT4Rec repository's data/beauty.txt ('user item'
# lines). Without one, ../shared/data/amazon-beauty/beauty_bert4rec.txt is
# used when present, else the file is downloaded.
#
# PROTOCOL=sasrec (the default) trains a causal (SASRec) model with
# pre-LN blocks (NORM=pre; NORM=post for BERT's layout) on
# next-item examples, on every item but the test one (cs-mask split
# --train-valid), for a fixed number of epochs, with the softmax over
# every item (LOSS=full). LOSS=sampled: a sampled softmax over 256
# negatives a batch shares, drawn by popularity without the logQ
# correction (SAMPLER=uniform|pop|batch, LOGQ=on|off), several times
# cheaper; LOSS=gbce: gSASRec's loss over uniform ones. HIDDEN (64) sets
# its width, DROPOUT (0.2) its hidden dropout.
# PROTOCOL=paper trains BERT4Rec as its code does for the paper's
# figures: Cloze examples, on the same split, for a fixed number of epochs
# (about 50 minutes on 2 cores).
# PROTOCOL=early is BERT4Rec holding the validation item out and stopping
# early on its NDCG@10.
# PRESET=seqlines reads 'user item item ...' lines (the 5-core Beauty.txt).
# Other knobs: EPOCHS (sasrec: 20; paper: 10; early: at most 30), DUPE
# (Cloze copies per window, 10), MASK_PROB (0.6), LR (1e-3), BATCH (128),
# THREADS (all cores), NEGATIVES (256), EXTRA (more cs-train options).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
url=https://raw.githubusercontent.com/FeiSun/BERT4Rec/master/data/beauty.txt
data=${1:-}
work=${2:-beauty-run}
if [ -z "$data" ]; then
	data=$top/../shared/data/amazon-beauty/beauty_bert4rec.txt
	[ -f "$data" ] || data=$work/beauty.txt
fi
# the work is done in $work: a relative path names a file from here
case $data in /*) ;; *) data=$(pwd)/$data ;; esac

case ${PROTOCOL:=sasrec} in
sasrec) split=--train-valid; valid=; epochs=${EPOCHS:-20} ;;
paper) split=--train-valid; valid=; epochs=${EPOCHS:-10} ;;
early) split=; valid="--valid beauty.valid.cseq --log train.log"; epochs=${EPOCHS:-30} ;;
*) echo "beauty.sh: PROTOCOL is sasrec, paper or early, not '$PROTOCOL'" >&2; exit 2 ;;
esac
case ${LOSS:=full} in
sampled)
	loss="--loss sampled --negatives ${NEGATIVES:-256} --sampler ${SAMPLER:-pop}"
	[ "${SAMPLER:-pop}" = uniform ] || loss="$loss --logq ${LOGQ:-off}" ;;
gbce) loss="--loss gbce --negatives ${NEGATIVES:-256}" ;;
full) loss="--loss full" ;;
*) echo "beauty.sh: LOSS is sampled, gbce or full, not '$LOSS'" >&2; exit 2 ;;
esac

(cd "$top" && make -s deps && make -s all)
PATH=$top:$PATH
mkdir -p "$work"

if [ ! -f "$data" ]; then
	echo "beauty.sh: downloading $url" >&2
	tmp=$data.part
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL -o "$tmp" "$url"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$tmp" "$url"
	else
		echo "beauty.sh: need curl or wget to download $url (or give the file's path)" >&2
		exit 1
	fi
	mv "$tmp" "$data"
fi

threads=${THREADS:+-j $THREADS}
cd "$work"
echo "== ingest, vocabulary, split, training examples" >&2
cs-ingest -p "${PRESET:-pairs}" -o raw.cseq "$data"
cs-vocab build -o vocab.txt raw.cseq
cs-vocab encode -v vocab.txt -o enc.cseq raw.cseq
# shellcheck disable=SC2086
cs-mask split $split -o beauty enc.cseq
if [ "$PROTOCOL" = sasrec ]; then
	# SASRec's setting (1 block, 1 head, dropout 0.2), every position a target
	cs-mask next -o train.cseq beauty.train.cseq
	model="--attention causal --norm ${NORM:-pre} $loss --layers 1 --heads 1 --hidden ${HIDDEN:-64} --dropout ${DROPOUT:-0.2} --attn-dropout 0.2"
else
	cs-mask cloze --dupe "${DUPE:-10}" --mask-prob "${MASK_PROB:-0.6}" -o train.cseq beauty.train.cseq
	model=
fi

echo "== train (PROTOCOL=$PROTOCOL, EPOCHS=$epochs)" >&2
start=$(date +%s)
# shellcheck disable=SC2086
cs-train -v vocab.txt $valid -o model.bin $model \
	--epochs "$epochs" --lr "${LR:-1e-3}" --batch "${BATCH:-128}" $threads \
	${EXTRA:-} train.cseq
end=$(date +%s)
echo "training took $((end - start)) s" >&2

echo "== test metrics (leave-one-out; full ranking and 100 popularity-sampled negatives)"
# shellcheck disable=SC2086
cs-eval -m model.bin $threads beauty.test.cseq | tee metrics.tsv
echo "== the same with each history's items left out of the ranking (as SASRec's benchmarks rank)"
# shellcheck disable=SC2086
cs-eval -m model.bin --exclude-seen $threads beauty.test.cseq | tee metrics-exclude-seen.tsv

echo "== recommendations for three users"
cs-vocab decode -q -v vocab.txt beauty.test.cseq | cs-cat -H | awk -F'\t' '
	NF < 2 { next }
	$1 != last { if (n == 3) exit; if (last != "") print line; line = $1 "\t" $2; last = $1; n++; next }
	{ line = line " " $2 }
	END { if (line != "") print line }' > histories.txt
# shellcheck disable=SC2086
cs-recommend -m model.bin -v vocab.txt --text -k 5 -x $threads histories.txt
