#!/bin/sh
# UCI Online Retail end to end: will a purchased item be returned? Each
# purchase is labelled by a later cancellation (invoice C...) of the same
# stock code by the same customer (cs-mask returns); an event head is
# trained on customer histories and compared with simple baselines on the
# same split.
#
#   sh scripts/retail-returns.sh OnlineRetail.csv [workdir]
#
# Environment: EPOCHS (20), SEED (1), THREADS (all cores), POS_WEIGHT
# (auto). Prints a TSV table on stdout.
usage="usage: sh scripts/retail-returns.sh OnlineRetail.csv [workdir]"
[ $# -ge 1 ] && [ -f "$1" ] || { echo "$usage" >&2; exit 2; }
csv=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
. "$(dirname "$0")/tasks-lib.sh"
work=${2:-retail-run}
mkdir -p "$work"
cd "$work"

log "ingest by customer, label returns, split customers at random"
cs-ingest -q -p retail --skip-missing -o raw.cseq "$csv"
cs-vocab build -q -F item,action -o vocab.txt raw.cseq
cs-vocab encode -q -v vocab.txt -o enc.cseq raw.cseq
cs-mask returns -q --vocab vocab.txt -o ret.cseq enc.cseq
cs-mask split -q --random 0.15,0.2 --seed "$SEED" -o r ret.cseq
header
baselines return event r.train.cseq r.test.cseq
# shellcheck disable=SC2086
cs-train -q -v vocab.txt --head event --pos-weight "${POS_WEIGHT:-auto}" --epochs "$EPOCHS" \
	--seed "$SEED" $threads --valid r.valid.cseq -o returns.bin r.train.cseq
cs-eval -q -m returns.bin r.test.cseq > returns.tsv
row return "event head" returns.tsv
