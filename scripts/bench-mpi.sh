#!/bin/sh
# bench-mpi.sh - data-parallel cs-train on one machine: examples/s of
# 1 process x 1 thread, 1 process x T threads and T processes (mpirun) x 1
# thread on the same Cloze examples and global batch, and the time of one
# allreduce of the gradient buffer with its share of a step.
#
#   scripts/bench-mpi.sh [DATA_FILE] [T]
#
# DATA_FILE: Amazon Beauty 5-core, one user a line [beauty_5core_seq.txt
# of DATA_DIR]; T: processes and threads [2]. BERT4Rec's Beauty model
# (C 64, L 2, 2 heads, length 50), batch 128, on a subset of STEPS * 128
# Cloze examples (every k-th of cs-mask cloze's defaults), trained for two
# epochs; the second epoch's examples/s is taken (the first warms up).
#
# Environment: REPEATS [3] runs of each configuration, interleaved,
# medians reported; STEPS [50]; WORK [a fresh mktemp -d] (prepared data
# kept and reused); DATA_DIR [/work/shared/data/amazon-beauty]; MPIRUN
# [mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1: a
# process waiting in a sum yields its core, which on a machine shared
# with other work (load 9 on 2 cores) took 2 processes from 1,409 to
# 2,355 examples/s]; ITERS [200] allreduces timed.
#
# The allreduce: a small MPI program times MPI_Allreduce (sum, in place)
# of a float buffer the size of the model's (cs-train --verbose gives the
# parameters) between T processes, median of ITERS. Its share of a step
# is that time over the step time of T processes (128 / examples/s).
# cs-train --verbose also reports, for each epoch, the time its steps
# spent in the processes' sums, waiting for the slowest included.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
DATA_DIR=${DATA_DIR:-/work/shared/data/amazon-beauty}
DATA=${1:-$DATA_DIR/beauty_5core_seq.txt}
NP=${2:-2}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-50}
ITERS=${ITERS:-200}
BATCH=128
MPIRUN=${MPIRUN:-mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cs-bench-mpi.XXXXXX")}
mkdir -p "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench-mpi: $*"; exit 1; }
[ -r "$DATA" ] || die "cannot read $DATA"
command -v mpirun > /dev/null || die "no mpirun (make deps)"
make -s cs-train cs-mask cs-ingest cs-vocab cs-cat >&2 || die "make failed"
./cs-train --version | grep -q '^data parallel: MPI' || die "cs-train built without MPI"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
d=$WORK/data
mkdir -p "$d"
if [ ! -s "$d/sub.cloze" ]; then
	./cs-ingest -q -p seqlines -o "$d/raw.cseq" "$DATA"
	./cs-vocab build -q -o "$d/vocab.txt" "$d/raw.cseq"
	./cs-vocab encode -q -v "$d/vocab.txt" -o "$d/enc.cseq" "$d/raw.cseq"
	./cs-mask split -q -o "$d/split" "$d/enc.cseq"
	./cs-mask cloze -q -o "$d/train.cloze" "$d/split.train.cseq"
	E=$(./cs-cat -j -q "$d/train.cloze" | wc -l)
	n=$((STEPS * BATCH))
	[ "$E" -ge "$n" ] || die "$E examples, fewer than STEPS * $BATCH"
	# every k-th sequence, n of them (the text form separates sequences
	# by a blank line or a new user: bench-train.sh's subset)
	./cs-cat -q "$d/train.cloze" | awk -F'\t' -v k=$((E / n)) -v want="$n" '
		NR == 1 { print; lr = -1; next }
		/^$/ { nr = 1; next }
		{ if (NR > 2 && (nr || $1 != prev)) r++; nr = 0; prev = $1
		  if (r % k) next
		  if (r != lr) { if (++got > want) exit; if (got > 1) print "" }
		  print; lr = r }' | ./cs-cat -r -q -o "$d/sub.cloze"
fi
ns=$(./cs-cat -j -q "$d/sub.cloze" | wc -l)

# cs-train CONFIG PROCS THREADS RUN: the second epoch's examples/s
train() {
	log="$WORK/$1.$4.log"
	if [ "$2" -gt 1 ]; then
		/usr/bin/time -f 'TIME wall=%e user=%U sys=%S' $MPIRUN -n "$2" ./cs-train --verbose \
			-v "$d/vocab.txt" -o "$WORK/m.$1.bin" --epochs 2 --batch $BATCH -j "$3" \
			"$d/sub.cloze" 2> "$log" || { cat "$log" >&2; die "$1 failed"; }
	else
		/usr/bin/time -f 'TIME wall=%e user=%U sys=%S' ./cs-train --verbose \
			-v "$d/vocab.txt" -o "$WORK/m.$1.bin" --epochs 2 --batch $BATCH -j "$3" \
			"$d/sub.cloze" 2> "$log" || { cat "$log" >&2; die "$1 failed"; }
	fi
	tr '\r' '\n' < "$log" | sed -n 's/.*epoch 2 .* \([0-9.]*\) ex\/s.*/\1/p' | tail -1
}

say "bench-mpi: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $ns examples, batch $BATCH; work in $WORK"
say "load: $(uptime)"
: > "$WORK/rates"
for r in $(seq "$REPEATS"); do
	for c in "1x1 1 1" "1x$NP 1 $NP" "${NP}x1 $NP 1"; do
		set -- $c
		rate=$(train "$1" "$2" "$3" "$r")
		printf '%s\t%s\n' "$1" "$rate" >> "$WORK/rates"
		say "   run $r: $1 (processes x threads) $rate ex/s; $(sed -n 's/^TIME //p' "$WORK/$1.$r.log")"
	done
done
nparams=$(sed -n 's/.* \([0-9]*\) parameters;.*/\1/p' "$WORK/1x1.1.log" | head -1)
# the time in the sums that cs-train measured, second epoch, per run
for r in $(seq "$REPEATS"); do
	sed -n 's/.*epoch 2: \([0-9.]*\) s of \([0-9.]*\) s in the sums.*/\1 \2/p' "$WORK/${NP}x1.$r.log"
done > "$WORK/sums"

# one allreduce of nparams floats between NP processes
cat > "$WORK/allreduce.c" << 'EOF'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}
int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int n = atoi(argv[1]), iters = atoi(argv[2]), rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	float *g = malloc(sizeof *g * (size_t)n);
	double *t = malloc(sizeof *t * (size_t)iters);
	for (int i = 0; i < n; i++)
		g[i] = 1e-3f * (float)(i % 101);
	for (int k = 0; k < iters + 10; k++) {
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
		if (k >= 10) /* the first ones set up */
			t[k - 10] = MPI_Wtime() - t0;
		for (int i = 0; i < n; i++)
			g[i] *= 0.5f;
	}
	qsort(t, (size_t)iters, sizeof *t, cmp);
	if (rank == 0)
		printf("%.6f %.6f\n", t[iters / 2], t[iters / 10]);
	MPI_Finalize();
	return 0;
}
EOF
cc -O2 $(pkg-config --cflags ompi-c) -o "$WORK/allreduce" "$WORK/allreduce.c" \
	$(pkg-config --libs ompi-c) || die "cannot build the allreduce timer"
$MPIRUN -n "$NP" "$WORK/allreduce" "$nparams" "$ITERS" > "$WORK/ar" || die "allreduce timer failed"
say "load: $(uptime)"

rate() { awk -F'\t' -v c="$1" '$1 == c { print $2 }' "$WORK/rates" | median; }
r11=$(rate 1x1)
r1t=$(rate "1x$NP")
rp1=$(rate "${NP}x1")
ar=$(cut -d' ' -f1 "$WORK/ar")
ar10=$(cut -d' ' -f2 "$WORK/ar")
sums=$(awk '{ print $1 / $2 }' "$WORK/sums" | median)
awk -v r11="$r11" -v r1t="$r1t" -v rp1="$rp1" -v np="$NP" -v b="$BATCH" -v ar="$ar" \
	-v ar10="$ar10" -v p="$nparams" -v sums="$sums" 'BEGIN {
	printf "examples/s (medians of the second epoch):\n"
	printf "  1 process x 1 thread      %8.0f\n", r11
	printf "  1 process x %d threads     %8.0f  (%.2fx)\n", np, r1t, r1t / r11
	printf "  %d processes x 1 thread    %8.0f  (%.2fx)\n", np, rp1, rp1 / r11
	step = b / rp1
	printf "gradient buffer: %d floats (%.2f MB)\n", p, p * 4 / 1e6
	printf "one allreduce, %d processes: %.3f ms median (%.3f ms 10th percentile)\n", np, ar * 1e3, ar10 * 1e3
	printf "step of %d processes: %.1f ms; the allreduce %.1f%% of it\n", np, step * 1e3, 100 * ar / step
	printf "time in the sums within cs-train (waits included): %.1f%% of the steps\n", 100 * sums
}'
