#!/bin/sh
# Quality against training time for each attention mode and loss: the
# validation NDCG@10 (full ranking) after every epoch against the seconds
# of training so far, then the test figures of each run's best model.
#
#   sh scripts/time-curve.sh [SEQLINES] [DIR]
#
# SEQLINES is a 'user item item ...' file (default the 5-core Beauty of
# ../shared/data). It is split leave-one-out with a validation item
# (cs-mask split); each run trains on the train split, validates every
# epoch and keeps its best model (--valid, --patience PATIENCE, at most
# EPOCHS epochs), which is then evaluated on the test split, with and
# without --exclude-seen. Runs (RUNS, default all eight):
#   bert4rec-full     bidirectional, Cloze examples (cs-mask cloze --dupe
#                     DUPE), softmax over every item
#   bert4rec-sampled  the same, sampled softmax over NEGATIVES uniform ones
#   sasrec-full       causal, next-item examples (cs-mask next)
#   sasrec-sampled    the same, sampled softmax
#   sasrec-pop        the same over negatives drawn by popularity, without
#                     the logQ correction (the main job's loss)
#   sasrec-gbce       the same, gSASRec's gBCE (t 0.75)
#   sasrec-pre-full   causal with pre-LN blocks (cs-train --norm pre), full
#                     softmax
#   sasrec-pre-sampled  the same, sampled softmax
# Every run has hidden HIDDEN (64), 1 block, 1 head, dropout 0.2 and the
# other cs-train defaults; THREADS (2) threads. Prints the curves as TSV
# (DIR/curves.tsv) and the test table (DIR/test.tsv), and draws
# DIR/time-curve.png and .svg when gnuplot is installed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$top/../shared/data/amazon-beauty/beauty_5core_seq.txt}
dir=${2:-time-curve}
RUNS=${RUNS:-"bert4rec-full bert4rec-sampled sasrec-full sasrec-sampled sasrec-pop sasrec-gbce sasrec-pre-full sasrec-pre-sampled"}
EPOCHS=${EPOCHS:-60}
PATIENCE=${PATIENCE:-5}
DUPE=${DUPE:-1}
HIDDEN=${HIDDEN:-64}
NEGATIVES=${NEGATIVES:-256}
THREADS=${THREADS:-2}

(cd "$top" && make -s all)
PATH=$top:$PATH
mkdir -p "$dir"
cd "$dir"

lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print "# cpu: " $2 }'
lscpu | grep -o 'avx512f\|avx512_bf16\|amx_bf16' | sort -u | tr '\n' ' ' | sed 's/^/# flags: /; s/$/\n/'
echo "# hidden $HIDDEN, 1 block, 1 head, dropout 0.2, $THREADS threads; at most $EPOCHS epochs, patience $PATIENCE"

if [ ! -s s.test.cseq ]; then
	cs-ingest -q -p seqlines -o raw.cseq "$data"
	cs-vocab build -q -o vocab.txt raw.cseq
	cs-vocab encode -q -v vocab.txt -o enc.cseq raw.cseq
	cs-mask split -q -o s enc.cseq
	cs-mask next -q -o next.cseq s.train.cseq
	cs-mask cloze -q --dupe "$DUPE" -o cloze.cseq s.train.cseq
fi

printf 'run\tepoch\tseconds\tvalid_ndcg10\tvalid_hr10\n' > curves.tsv
printf 'run\tbest_epoch\tseconds\ttest_ndcg10\ttest_hr10\ttest_ndcg10_excl\ttest_hr10_excl\n' > test.tsv
for r in $RUNS; do
	case $r in
	bert4rec-*) ex=cloze.cseq; att=bidirectional ;;
	sasrec-*) ex=next.cseq; att=causal ;;
	*) echo "time-curve.sh: unknown run '$r'" >&2; exit 2 ;;
	esac
	case $r in
	*-full) loss="--loss full" ;;
	*-sampled) loss="--loss sampled --negatives $NEGATIVES" ;;
	*-pop) loss="--loss sampled --negatives $NEGATIVES --sampler pop --logq off" ;;
	*-gbce) loss="--loss gbce --negatives $NEGATIVES" ;;
	esac
	case $r in
	*-pre-*) norm=pre ;;
	*) norm=post ;;
	esac
	echo "== $r" >&2
	# shellcheck disable=SC2086
	cs-train -q -v vocab.txt --valid s.valid.cseq --log "$r.log" -o "$r.bin" \
		--attention $att --norm $norm $loss --hidden "$HIDDEN" --layers 1 --heads 1 \
		--dropout 0.2 --attn-dropout 0.2 --epochs "$EPOCHS" \
		--patience "$PATIENCE" -j "$THREADS" "$ex"
	awk -F'\t' -v r="$r" 'NR > 1 && $6 != "" { print r "\t" $1 "\t" $5 "\t" $6 "\t" $7 }' "$r.log" >> curves.tsv
	best=$(awk -F'\t' 'NR > 1 && $9 == 1 { e = $1; s = $5 } END { print e "\t" s }' "$r.log")
	full=$(cs-eval -q -m "$r.bin" -n 0 -k 10 -j "$THREADS" s.test.cseq |
		awk -F'\t' '$1 == "NDCG@10" { n = $2 } $1 == "HR@10" { h = $2 } END { print n "\t" h }')
	excl=$(cs-eval -q -m "$r.bin" -n 0 -k 10 --exclude-seen -j "$THREADS" s.test.cseq |
		awk -F'\t' '$1 == "NDCG@10" { n = $2 } $1 == "HR@10" { h = $2 } END { print n "\t" h }')
	printf '%s\t%s\t%s\t%s\n' "$r" "$best" "$full" "$excl" >> test.tsv
done
cat curves.tsv
echo
cat test.tsv

command -v gnuplot >/dev/null 2>&1 || exit 0
for t in png svg; do
	case $t in
	png) term="pngcairo noenhanced size 900,560" ;;
	svg) term="svg noenhanced size 900,560" ;;
	esac
	gnuplot <<EOF
set terminal $term
set output 'time-curve.$t'
set title 'Validation NDCG@10 (full ranking) against training time'
set xlabel 'training seconds'
set ylabel 'NDCG@10'
set key bottom right
set linetype 1 lc rgb '#1f77b4' lw 2
set linetype 2 lc rgb '#ff7f0e' lw 2
set linetype 3 lc rgb '#2ca02c' lw 2
set linetype 4 lc rgb '#d62728' lw 2
set linetype 5 lc rgb '#9467bd' lw 2
set linetype 6 lc rgb '#8c564b' lw 2
set linetype 7 lc rgb '#e377c2' lw 2
set linetype 8 lc rgb '#7f7f7f' lw 2
set grid
set xrange [0:*]
set yrange [0:*]
plot for [r in "$RUNS"] '< grep "^'.r.'	" curves.tsv' using 3:4 with linespoints title r
EOF
done
echo "# plots: $dir/time-curve.png, $dir/time-curve.svg" >&2
