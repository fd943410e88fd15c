#!/bin/sh
# Diginetica (CIKM Cup 2016) end to end: will a session end in a purchase?
# Item views joined with the purchases file, labelled by cs-mask session,
# a session head against simple baselines on the same split.
#
#   sh scripts/diginetica-intent.sh train-item-views.csv train-purchases.csv [workdir]
#
# Environment: EPOCHS (20), SEED (1), THREADS (all cores). Prints a TSV table.
usage="usage: sh scripts/diginetica-intent.sh VIEWS.csv PURCHASES.csv [workdir]"
[ $# -ge 2 ] && [ -f "$1" ] && [ -f "$2" ] || { echo "$usage" >&2; exit 2; }
views=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
purchases=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
. "$(dirname "$0")/tasks-lib.sh"
work=${3:-diginetica-run}
mkdir -p "$work"
cd "$work"

log "ingest sessions with their purchases, label, split sessions at random"
cs-ingest -q -p diginetica --purchases "$purchases" -o raw.cseq "$views"
cs-vocab build -q -F item,action -o vocab.txt raw.cseq
cs-vocab encode -q -v vocab.txt -o enc.cseq raw.cseq
cs-mask split -q --random 0.15,0.2 --seed "$SEED" -o r enc.cseq
for p in train valid test; do
	cs-mask session -q --vocab vocab.txt -o "s.$p.cseq" "r.$p.cseq"
done
header
baselines purchase session s.train.cseq s.test.cseq
# shellcheck disable=SC2086
cs-train -q -v vocab.txt --head session --epochs "$EPOCHS" --seed "$SEED" $threads \
	--valid s.valid.cseq -o intent.bin s.train.cseq
cs-eval -q -m intent.bin s.test.cseq > intent.tsv
row purchase "session head" intent.tsv
