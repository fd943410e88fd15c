#!/bin/sh
# Training throughput against the size of the catalogue: the sampled
# softmax (whose cost should barely grow with it) beside the full one.
#
#   sh scripts/bench-catalogue.sh [DIR]
#
# For each catalogue size (PRODUCTS, default "10000 100000 1000000"),
# scripts/gen-kaggle.c writes ROWS synthetic Kaggle-format events (default
# 4M; Zipf popularity, so the vocabulary holds the products that occur),
# grouped by user, split leave-one-out and cut into next-item examples.
# Then a causal model (hidden 64, 1 block, 1 head, length 50) trains one
# epoch on the examples of the first NS users with --loss sampled (256 uniform
# negatives) and on those of the first NF users with --loss full, each RUNS times; the
# script prints the median examples/s cs-train reports, the items of the
# vocabulary, and the peak RSS (GNU time) of the runs. THREADS (default
# 2) threads. Everything goes to DIR (default a temporary directory).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
PRODUCTS=${PRODUCTS:-"10000 100000 1000000"}
ROWS=${ROWS:-4000000}
NS=${NS:-12800}
NF=${NF:-1280}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/cs-bench-cat.XXXXXX")}
mkdir -p "$dir"
(cd "$top" && make -s all)
PATH=$top:$PATH
cc -O2 -o "$dir/gen-kaggle" "$top/scripts/gen-kaggle.c" -lm

lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print "# cpu: " $2 }'
lscpu | grep -o 'avx512f\|avx512_bf16\|amx_bf16' | sort -u | tr '\n' ' ' | sed 's/^/# flags: /; s/$/\n/'
echo "# $ROWS rows per catalogue; sampled: the first $NS users, full: $NF; $THREADS threads; medians of $RUNS"
printf 'products\titems\tloss\texamples/s\tpeak_rss_MiB\n'

# the sequences of the first N users of a stream grouped by user, kept with
# its metadata
head_stream() { cs-cat --meta "$1" | awk -F'\t' -v n="$2" '/^#meta/ || !h { if (!/^#meta/) h = 1; print; next }
	$1 != last { k++; last = $1 } k <= n' | cs-cat -r -o "$3"; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for p in $PRODUCTS; do
	d=$dir/p$p
	mkdir -p "$d"
	if [ ! -s "$d/next.cseq" ]; then
		"$dir/gen-kaggle" -n "$ROWS" -p "$p" -s 1 -o "$d/events.csv"
		cs-ingest -q -p kaggle --by user -o "$d/raw.cseq" "$d/events.csv"
		cs-vocab build -q -o "$d/vocab.txt" "$d/raw.cseq"
		cs-vocab encode -q -v "$d/vocab.txt" -o "$d/enc.cseq" "$d/raw.cseq"
		cs-mask split -q -o "$d/s" "$d/enc.cseq"
		cs-mask next -q -o "$d/next.cseq" "$d/s.train.cseq"
		head_stream "$d/s.train.cseq" "$NS" "$d/us.cseq"
		head_stream "$d/s.train.cseq" "$NF" "$d/uf.cseq"
		cs-mask next -q -o "$d/ns.cseq" "$d/us.cseq"
		cs-mask next -q -o "$d/nf.cseq" "$d/uf.cseq"
		rm -f "$d/events.csv" "$d/raw.cseq"
	fi
	items=$(cs-vocab info "$d/vocab.txt" | awk -F'\t' '$1 == "item" { sub("size ", "", $2); print $2 }')
	for loss in sampled full; do
		in=$d/ns.cseq
		[ $loss = full ] && in=$d/nf.cseq
		rates= rss=0
		i=0
		while [ $i -lt "$RUNS" ]; do
			/usr/bin/time -f '%M' -o "$d/time.txt" cs-train -v "$d/vocab.txt" -o "$d/m.bin" \
				--attention causal --loss $loss --layers 1 --heads 1 --dropout 0.2 \
				--epochs 1 --batch 128 -j "$THREADS" "$in" 2> "$d/train.err"
			r=$(awk '/ex\/s/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ex/s") v = $i } END { print v }' \
				"$d/train.err")
			rates="$rates $r"
			k=$(tail -n 1 "$d/time.txt")
			[ "$k" -gt "$rss" ] && rss=$k
			i=$((i + 1))
		done
		printf '%s\t%s\t%s\t%s\t%d\n' "$p" "$items" "$loss" \
			"$(echo $rates | tr ' ' '\n' | median)" $((rss / 1024))
	done
done
