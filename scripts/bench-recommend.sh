#!/bin/sh
# bench-recommend.sh - cs-recommend's throughput and latency on Amazon
# Beauty (BERT4Rec's beauty.txt: 40,226 users, 54,542 items): top-10 next
# items for every user's history over the whole catalogue, and one history
# alone, process start and model load included.
#
#   sh scripts/bench-recommend.sh [DATA_FILE]
#
# DATA_FILE defaults to ../shared/data/amazon-beauty/beauty_bert4rec.txt
# next to the repository. The data are ingested, encoded and split
# (leave-one-out); a model of the paper's Beauty size (C 64, L 2, length
# 50) is trained for one epoch on the Cloze examples of the first 300
# training users only, since throughput does not depend on the weights.
# Then every user's whole history (the encoded stream, 40,226 histories)
# goes through cs-recommend -k 10, RUNS times for each kernel of KERNELS,
# the kernels interleaved so that a busy machine slows all alike.
#
# Environment: RUNS [5]; KERNELS ["auto fp32"]: CS_KERNEL values (auto:
# what cs-recommend picks, fp32: the single-precision path); THREADS [all
# cores]; BASELINE: another cs-recommend binary (say, one built from an
# older commit) timed the same way beside them; WORK [a fresh mktemp -d]:
# the prepared data and model are kept there and reused.
#
# Prints, for each: the kernel that ran, the median wall time and
# histories/s (and the median CPU time, user + system), then the median
# latency of one history. Medians, since the machine may be shared: the
# load average is printed before and after.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$here/../shared/data/amazon-beauty/beauty_bert4rec.txt}
RUNS=${RUNS:-5}
KERNELS=${KERNELS:-auto fp32}
threads=${THREADS:+-j $THREADS}
[ -f "$data" ] || { echo "bench-recommend.sh: no data file '$data'" >&2; exit 1; }
(cd "$here" && make -s all)
PATH=$here:$PATH
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"

if [ ! -f model.bin ]; then
	echo "== preparing data and a briefly trained model in $work" >&2
	cs-ingest -q -p pairs -o raw.cseq "$data"
	cs-vocab build -o vocab.txt raw.cseq
	cs-vocab encode -v vocab.txt -o enc.cseq raw.cseq
	cs-mask split -o beauty enc.cseq
	cs-cat --meta beauty.train.cseq |
		awk -F'\t' '/^#/ || NR <= 6 { print; next } $1 != u { u = $1; n++ } n <= 300' |
		cs-cat -r -o small.cseq
	cs-mask cloze --dupe 1 -o train.cseq small.cseq
	# shellcheck disable=SC2086
	cs-train -q -v vocab.txt -o model.bin --epochs 1 $threads train.cseq
	rm -f model.bin.ckpt
fi
n=$(cs-cat --info enc.cseq | awk '$1 == "records" { print $2 }')
items=$(awk -F'\t' '$1 == "field" && $2 == "item" { print $3 - 3 }' vocab.txt)
one=$(cs-vocab decode -q -v vocab.txt enc.cseq | cs-cat -H | awk -F'\t' '
	$1 != u { if (u != "") exit; u = $1 } { s = s " " $2 } END { print "u" s }' |
	sed 's/ /\t/')

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# time_run NAME BINARY [ENV...]: one run over every history, appending
# "wall cpu kernel" to NAME.times
time_run() {
	name=$1 bin=$2
	shift 2
	# shellcheck disable=SC2086
	env "$@" /usr/bin/time -f 'TIME %e %U %S' "$bin" -m model.bin -v vocab.txt -k 10 \
		$threads -o out.tsv enc.cseq 2> err.txt || { cat err.txt >&2; exit 1; }
	k=$(sed -n 's/.*kernel \([a-z0-9]*\)).*/\1/p' err.txt)
	awk -v k="${k:-sgemm}" '/^TIME/ { print $2, $3 + $4, k }' err.txt >> "$name.times"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f ./*.times
i=0
while [ "$i" -lt "$RUNS" ]; do
	for k in $KERNELS; do
		time_run "$k" cs-recommend "CS_KERNEL=$k"
	done
	[ -z "${BASELINE:-}" ] || time_run baseline "$BASELINE"
	i=$((i + 1))
done
echo "top-10 over $items items for $n histories, $RUNS runs, medians:"
for k in $KERNELS ${BASELINE:+baseline}; do
	w=$(cut -d' ' -f1 "$k.times" | median)
	c=$(cut -d' ' -f2 "$k.times" | median)
	kern=$(tail -n 1 "$k.times" | cut -d' ' -f3)
	printf '  %-9s kernel %-7s %6.2f s  %7.0f histories/s  (cpu %.2f s)\n' "$k" "$kern" \
		"$w" "$(echo "$n $w" | awk '{ print $1 / $2 }')" "$c"
done

# The shell's timing costs too (the second date's fork and exec): timed
# the same way around true, and taken off. scripts/bench-latency.py times
# the spawn to the exit from inside one process, more exactly.
rm -f lat.times lat0.times
i=0
while [ "$i" -lt "$RUNS" ]; do
	s=$(date +%s.%N)
	# shellcheck disable=SC2086
	printf '%s\n' "$one" | cs-recommend -q -m model.bin -v vocab.txt --text -k 10 $threads \
		> /dev/null
	e=$(date +%s.%N)
	echo "$s $e" | awk '{ print ($2 - $1) * 1000 }' >> lat.times
	s=$(date +%s.%N)
	printf '%s\n' "$one" | true > /dev/null
	e=$(date +%s.%N)
	echo "$s $e" | awk '{ print ($2 - $1) * 1000 }' >> lat0.times
	i=$((i + 1))
done
t1=$(median < lat.times) t0=$(median < lat0.times)
echo "one history (process start and model load included): $(echo "$t1 $t0" |
	awk '{ printf "%.0f ms median (%.0f as timed, less %.0f for the timing itself)", $1 - $2, $1, $2 }')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
