#!/bin/sh
# bench-train.sh - training speed of cs-train against a PyTorch reference
# (scripts/bench_bert4rec_torch.py) on Amazon Beauty, BERT4Rec's Beauty
# configuration (C 64, L 2, 2 heads, max length 50, batch 128, Cloze
# examples of cs-mask cloze's defaults: dupe 10, mask prob 0.6, at most 30
# masked, windows sliding by 5), and on long histories, side by side in one
# run, same thread count.
#
#   scripts/bench-train.sh [DATA_FILE|long|all] [THREADS]
#
# DATA_FILE: a Beauty file, read with -p seqlines if its name has "seq"
# (beauty_5core_seq.txt: 12,101 items) and -p pairs otherwise
# (beauty_bert4rec.txt: 54,542 items); PRESET=... overrides. "long":
# synthetic long histories, MovieLens-1M-like (LONG_USERS [3000] users of
# 120 to 200 events, about 160, over LONG_ITEMS [3600] items, popularity
# skewed: item 1 + floor(items u^2)), trained as BERT4Rec's ML-1M
# configuration (its bert_config_ml-1m_64.json and run script: C 64, L 2,
# 2 heads, max length 200, hidden and attention dropout 0.2; Cloze examples
# with mask prob 0.2, at most 40 masked, dupe 10, windows sliding by half
# the length), batch 128 as the others. Default "all": the two Beauty sets
# and long. THREADS: both tools' thread count [all cores].
#
# Environment: REPEATS [3] runs of each tool, interleaved, medians
# reported; BASELINE [none] another cs-train binary (an older build) run
# beside the others, reported as cs-train-baseline; STEPS [50] batches timed per run; BUCKET [1] also run the
# reference with length-bucketed batches (a stronger peer; 0: skip);
# WORK [a fresh mktemp -d] working directory (the prepared data is kept
# there and reused if present); DATA_DIR [/work/shared/data/amazon-beauty];
# PYTHON [/usr/bin/python3, Debian's, which has torch].
#
# Method. Each set is ingested, encoded, split (leave-one-out) and masked
# into Cloze examples; E, their count, is an epoch. Both tools train on the
# same subset: every k-th sequence of the Cloze stream (k = E / (STEPS *
# 128)), STEPS * 128 examples, so one pass is STEPS steps. cs-train runs
# two epochs over it and its second epoch's examples/s is taken (the first
# is warm-up, as the reference's untimed steps); the reference runs 5 steps
# untimed, then STEPS timed steps on the same examples, padded to each
# batch's longest sequence (on Beauty nearly every batch of 128 holds a
# window of 40+, so that is nearly padding to 50), with OMP_WAIT_POLICY=PASSIVE
# (its fastest setting here; see that script). s/epoch = E / (examples/s).
#
# FLOP: per example, forward matrix products L (2 n C (4C + 2 FF) + 4 C n^2)
# + 2 m C^2 + 2 m C V (n tokens, m masked, the padded slots not counted),
# times 3 for forward + backward; GFLOP/s = that times examples/s. The
# sgemm peak is measured with OpenBLAS (the library both tools call, same
# kernel, reported) on a 2048^3 product and on the output layer's three
# products at this batch (M = 128 m masked rows, K = 64, V): the forward
# M x V = h wte^T, dh = dlogits wte, dwte = dlogits^T h; best of 3 runs;
# and on the feed-forward layer's forward product at a batch's tokens
# (128 n rows, K = 64, 256 columns): the encoder's largest, the one that
# matters on long histories. %step: against OpenBLAS running all the
# matrix products of one step at this batch alone, each at its own shape
# and called as cs-train calls it (attention's per-sequence products at
# the root mean square length, so that sum n^2 is kept): the peak a step
# of this model and data could reach if OpenBLAS's own time were all of it.
#
# The machine may be shared: the load average is printed before and after,
# with the process CPU time of the runs (CPU time / wall time / threads
# well below 1 means the tool was waiting for cores).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
DATA=${1:-all}
THREADS=${2:-$(nproc)}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-50}
BUCKET=${BUCKET:-1}
BATCH=128
DATA_DIR=${DATA_DIR:-/work/shared/data/amazon-beauty}
PYTHON=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cs-bench-train.XXXXXX")}
mkdir -p "$WORK"
TORCH="$PYTHON $here/scripts/bench_bert4rec_torch.py"

say() { printf '%s\n' "$*" >&2; }
die() { say "bench-train: $*"; exit 1; }

case $DATA in
all) sets="$DATA_DIR/beauty_5core_seq.txt $DATA_DIR/beauty_bert4rec.txt long" ;;
*) sets=$DATA ;;
esac
for f in $sets; do
	[ "$f" = long ] || [ -r "$f" ] || die "cannot read $f"
done
$PYTHON -c 'import torch' 2>/dev/null || die "$PYTHON has no torch (apt-get install python3-torch)"

# build (only what this needs; others may be building in the same tree)
if ! make -s cs-train cs-mask cs-ingest cs-vocab cs-cat >&2; then
	for p in cs-train cs-mask cs-ingest cs-vocab cs-cat; do
		[ -x "./$p" ] || die "make failed and ./$p is missing"
	done
	say "bench-train: make failed; using the programs already built"
fi

# the sgemm peak: a tiny C program against the OpenBLAS cs-train links,
# on the kernel cs-train runs (cs_blas_restart makes the same choice)
cat >"$WORK/sgemm.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "blas.h"
extern char *openblas_get_corename(void);
extern int openblas_get_num_threads(void);
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
/* GFLOP/s of C (M, N) = op(A) op(B), row-major, over about 0.5 s */
static double run(int ta, int tb, int M, int N, int K)
{
	float *A = malloc(sizeof *A * (size_t)M * K), *B = malloc(sizeof *B * (size_t)K * N);
	float *C = malloc(sizeof *C * (size_t)M * N);
	for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
	for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)(i % 5) * 0.1f;
	int lda = ta ? M : K, ldb = tb ? K : N, reps = 0;
	double t0, t;
	enum CBLAS_TRANSPOSE a = ta ? CblasTrans : CblasNoTrans, b = tb ? CblasTrans : CblasNoTrans;
	cblas_sgemm(CblasRowMajor, a, b, M, N, K, 1, A, lda, B, ldb, 0, C, N);
	t0 = now();
	do {
		cblas_sgemm(CblasRowMajor, a, b, M, N, K, 1, A, lda, B, ldb, 0, C, N);
		reps++;
	} while ((t = now() - t0) < 0.5);
	free(A); free(B); free(C);
	return 2.0 * M * N * K * reps / t / 1e9;
}
/*
 * The products of one training step of the model (hidden C = K, 2 blocks,
 * 2 heads, FF 4C, post-LN with the output transform) over a batch of N
 * tokens in B sequences of (root mean square) length T, M of them masked,
 * V items: each at its own shape, called as cs-train calls them (the
 * attention's (sequence, head) blocks in parallel, one OpenBLAS thread
 * each, when there are threads); GFLOP/s over about 0.5 s. The peak a step
 * could reach if all its time were OpenBLAS running its products.
 */
static float *buf(size_t n)
{
	float *p = malloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++) p[i] = (float)(i % 7) * 0.1f;
	return p;
}
static double gemm(int ta, int tb, int M, int N, int K, const float *A, const float *B, float *C)
{
	cs_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
	return 2.0 * M * N * K;
}
static double lin(int N, int IN, int OC, const float *X, const float *W, float *Y, float *G)
{
	return gemm(0, 1, N, OC, IN, X, W, Y) + gemm(0, 0, N, IN, OC, Y, W, G) +
	       gemm(1, 0, OC, IN, N, Y, X, G);
}
static double step_products(int N, int B, int T, int M, int V, int C)
{
	int L = 2, NH = 2, FF = 4 * C, hs = C / NH, th = openblas_get_num_threads();
	size_t big = (size_t)N * FF > (size_t)M * V ? (size_t)N * FF : (size_t)M * V;
	float *X = buf(big), *Y = buf(big), *G = buf(big), *W = buf((size_t)V * C);
	float *S = buf((size_t)th * T * T), *Q = buf((size_t)th * T * hs), *R = buf((size_t)th * T * hs);
	double t0 = now(), t, fl = 0;
	int reps = 0;
	do {
		for (int l = 0; l < L; l++) {
			fl += lin(N, C, 3 * C, X, W, Y, G) + lin(N, C, C, X, W, Y, G) +
			      lin(N, C, FF, X, W, Y, G) + lin(N, FF, C, X, W, Y, G);
			double fa = 0;
			int blas = th > 1 ? cs_blas_set_threads(1) : 0;
			#pragma omp parallel for schedule(dynamic) reduction(+ : fa) if (th > 1)
			for (int k = 0; k < B * NH; k++) {
				int me = 0;
#ifdef _OPENMP
				me = omp_get_thread_num();
#endif
				float *s = S + (size_t)me * T * T, *q = Q + (size_t)me * T * hs;
				float *r = R + (size_t)me * T * hs;
				fa += gemm(0, 1, T, T, hs, q, r, s) + gemm(0, 0, T, hs, T, s, q, r); /* forward */
				fa += gemm(0, 1, T, T, hs, r, q, s) + gemm(1, 0, T, hs, T, s, q, r) +
				      gemm(0, 0, T, hs, T, s, r, q) + gemm(1, 0, T, hs, T, s, q, r);
			}
			if (th > 1)
				cs_blas_set_threads(blas);
			fl += fa;
		}
		fl += lin(M, C, C, X, W, Y, G); /* the output transform */
		fl += gemm(0, 1, M, V, C, X, W, Y) + gemm(0, 0, M, C, V, Y, W, G) +
		      gemm(1, 0, V, C, M, Y, X, G);
		reps++;
	} while ((t = now() - t0) < 0.5);
	free(X); free(Y); free(G); free(W); free(S); free(Q); free(R);
	return fl / t / 1e9;
}
int main(int argc, char **argv)
{
	cs_blas_restart(argv, CS_BLAS_OMP_PASSIVE, NULL);
	cs_blas_init(openblas_get_num_threads());
	int M = atoi(argv[1]), V = atoi(argv[2]), N = atoi(argv[3]), K = 64;
	int B = argc > 5 ? atoi(argv[4]) : 0, T = argc > 5 ? atoi(argv[5]) : 0;
	double sq = 0, f = 0, d = 0, w = 0, ff = 0, st = 0, x;
	for (int r = 0; r < 3; r++) { /* best of 3: the peak */
		if ((x = run(0, 0, 2048, 2048, 2048)) > sq) sq = x;
		if ((x = run(0, 1, M, V, K)) > f) f = x;
		if ((x = run(0, 0, M, K, V)) > d) d = x;
		if ((x = run(1, 0, V, K, M)) > w) w = x;
		if ((x = run(0, 1, N, 4 * K, K)) > ff) ff = x;
		if (B && (x = step_products(N, B, T, M, V, K)) > st) st = x;
	}
	printf("SGEMM core=%s threads=%d square=%.1f fwd=%.1f dh=%.1f dw=%.1f out=%.1f ffn=%.1f step=%.1f\n",
	       openblas_get_corename(), openblas_get_num_threads(), sq, f, d, w,
	       3.0 / (1 / f + 1 / d + 1 / w), ff, st);
	return 0;
}
EOF
make -s libcs.a >&2 || die "make libcs.a failed"
cc -O2 -D_GNU_SOURCE -iquote lib -I/usr/include/x86_64-linux-gnu/openblas-pthread/ -o "$WORK/sgemm" \
	"$WORK/sgemm.c" libcs.a -fopenmp -lopenblas -lm ||
	die "cannot build the sgemm timer (libopenblas-dev)"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# the text form's sequences are separated by a blank line or a new user
subset() { # IN OUT K COUNT: every K-th sequence, COUNT of them
	./cs-cat -q "$1" | awk -F'\t' -v k="$3" -v want="$4" '
		NR == 1 { print; lr = -1; next }
		/^$/ { nr = 1; next }
		{ if (NR > 2 && (nr || $1 != prev)) r++; nr = 0; prev = $1
		  if (r % k) next
		  if (r != lr) { if (++got > want) exit; if (got > 1) print "" }
		  print; lr = r }' | ./cs-cat -r -q -o "$2"
}
kv() { sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

load_before=$(uptime)
say "bench-train: $THREADS threads, $REPEATS repeats of $STEPS steps of $BATCH; work in $WORK"
say "load: $load_before"
results="$WORK/results.tsv"
: >"$results"
for f in $sets; do
	name=$(basename "$f" .txt)
	case $name in *seq*) preset=seqlines ;; *) preset=pairs ;; esac
	preset=${PRESET:-$preset}
	d="$WORK/$name"
	mkdir -p "$d"
	cloze_opts= model_opts=
	if [ "$f" = long ]; then # the ML-1M configuration, on synthetic histories
		preset=pairs
		cloze_opts="--max-len 200 --mask-prob 0.2 --max-pred 40 --slide 0.5"
		model_opts="--max-len 200 --dropout 0.2 --attn-dropout 0.2"
		f="$d/long.txt"
		[ -s "$f" ] || awk -v users="${LONG_USERS:-3000}" -v items="${LONG_ITEMS:-3600}" 'BEGIN {
			srand(1)
			for (u = 1; u <= users; u++)
				for (n = 120 + int(rand() * 81); n > 0; n--) {
					x = rand(); print u, 1 + int(items * x * x) } }' >"$f"
	fi
	if [ ! -s "$d/train.cloze" ]; then
		./cs-ingest -q -p "$preset" -o "$d/raw.cseq" "$f"
		./cs-vocab build -q -o "$d/vocab.txt" "$d/raw.cseq"
		./cs-vocab encode -q -v "$d/vocab.txt" -o "$d/enc.cseq" "$d/raw.cseq"
		./cs-mask split -q -o "$d/split" "$d/enc.cseq"
		./cs-mask cloze -q $cloze_opts -o "$d/train.cloze" "$d/split.train.cseq"
	fi
	V=$(awk -F'\t' '$1 == "field" && $2 == "item" { print $3 }' "$d/vocab.txt")
	E=$(./cs-cat -J -q "$d/train.cloze" | wc -l)
	n=$((STEPS * BATCH))
	[ "$E" -ge "$n" ] || die "$name: $E examples, fewer than STEPS * $BATCH"
	k=$((E / n))
	subset "$d/train.cloze" "$d/sub.cloze" "$k" "$n"
	ns=$(./cs-cat -J -q "$d/sub.cloze" | wc -l)
	$TORCH -v "$d/vocab.txt" $model_opts --stats "$d/train.cloze" >"$d/stats.full"
	$TORCH -v "$d/vocab.txt" $model_opts --stats "$d/sub.cloze" >"$d/stats.sub"
	fpe=$(kv "$d/stats.sub" flop_per_example)
	mpe=$(kv "$d/stats.sub" masked_per_example)
	tpe=$(kv "$d/stats.sub" tokens_per_example)
	M=$(awk -v m="$mpe" -v b="$BATCH" 'BEGIN { printf "%d", m * b + 0.5 }')
	NT=$(awk -v n="$tpe" -v b="$BATCH" 'BEGIN { printf "%d", n * b + 0.5 }')
	sq=$(kv "$d/stats.sub" sumsq_per_example)
	TE=$(awk -v s="$sq" 'BEGIN { printf "%d", sqrt(s) + 0.5 }') # attention's length: sum n^2 kept
	say ""
	say "== $name ($preset): V=$V, $E Cloze examples (an epoch); subset $ns examples (every ${k}th)"
	say "   full: $(head -1 "$d/stats.full")"
	say "   subset: $(head -1 "$d/stats.sub")"
	OPENBLAS_NUM_THREADS=$THREADS "$WORK/sgemm" "$M" "$V" "$NT" "$BATCH" "$TE" >"$d/sgemm"
	say "   sgemm (OpenBLAS, $THREADS threads, GFLOP/s): $(cat "$d/sgemm")"
	for r in $(seq "$REPEATS"); do
		/usr/bin/time -f 'TIME wall=%e user=%U sys=%S' ./cs-train -v "$d/vocab.txt" \
			-o "$d/model.bin" --epochs 2 --batch $BATCH -j "$THREADS" $model_opts "$d/sub.cloze" \
			2>"$d/cs.$r.log" || { cat "$d/cs.$r.log" >&2; die "cs-train failed"; }
		tr '\r' '\n' <"$d/cs.$r.log" | sed -n 's/.*epoch 2 .* \([0-9.]*\) ex\/s.*/\1/p' | tail -1 >"$d/cs.$r.rate"
		rate=$(cat "$d/cs.$r.rate")
		[ -n "$rate" ] || { cat "$d/cs.$r.log" >&2; die "no examples/s in cs-train's output"; }
		printf 'cs-train\t%s\t%s\t%s\n' "$name" "$r" "$rate" >>"$results"
		say "   run $r: cs-train $rate ex/s (epoch 2; epoch 1 $(tr '\r' '\n' <"$d/cs.$r.log" |
			sed -n 's/.*epoch 1 .* \([0-9.]*\) ex\/s.*/\1/p' | tail -1)); process $(sed -n 's/^TIME //p' "$d/cs.$r.log")"
		if [ -n "${BASELINE:-}" ]; then
			/usr/bin/time -f 'TIME wall=%e user=%U sys=%S' "$BASELINE" -v "$d/vocab.txt" \
				-o "$d/model.base.bin" --epochs 2 --batch $BATCH -j "$THREADS" $model_opts \
				"$d/sub.cloze" 2>"$d/base.$r.log" || { cat "$d/base.$r.log" >&2; die "$BASELINE failed"; }
			rate=$(tr '\r' '\n' <"$d/base.$r.log" | sed -n 's/.*epoch 2 .* \([0-9.]*\) ex\/s.*/\1/p' | tail -1)
			[ -n "$rate" ] || { cat "$d/base.$r.log" >&2; die "no examples/s in $BASELINE's output"; }
			printf 'cs-train-baseline\t%s\t%s\t%s\n' "$name" "$r" "$rate" >>"$results"
			say "   run $r: cs-train-baseline $rate ex/s (epoch 2); process $(sed -n 's/^TIME //p' "$d/base.$r.log")"
		fi
		for pad in longest bucket; do
			[ $pad = bucket ] && [ "$BUCKET" = 0 ] && continue
			/usr/bin/time -f 'TIME wall=%e user=%U sys=%S' $TORCH -v "$d/vocab.txt" -j "$THREADS" $model_opts \
				--batch $BATCH --steps "$STEPS" --warmup 5 --pad $pad --epoch-examples "$E" \
				"$d/sub.cloze" >"$d/torch.$pad.$r.log" 2>&1 ||
				{ cat "$d/torch.$pad.$r.log" >&2; die "the torch reference failed"; }
			rate=$(kv "$d/torch.$pad.$r.log" examples_per_s)
			tool=torch-pad-$pad
			printf '%s\t%s\t%s\t%s\n' "$tool" "$name" "$r" "$rate" >>"$results"
			say "   run $r: $tool $rate ex/s; cpu $(kv "$d/torch.$pad.$r.log" cpu_s) s in the timed steps"
		done
	done
	[ "$r" -ge 1 ] && sed -n '1p' "$d/torch.longest.1.log" | sed 's/^/   /' >&2
	printf 'E\t%s\t%s\t%s\t%s\n' "$name" "$E" "$fpe" "$(cat "$d/sgemm")" >>"$results"
done
load_after=$(uptime)

# the table
say ""
awk -F'\t' -v th="$THREADS" -v reps="$REPEATS" '
	$1 == "E" { E[$2] = $3; F[$2] = $4
		    split($5, a, " "); for (i in a) { split(a[i], kv, "="); S[$2, kv[1]] = kv[2] }
		    order[++nd] = $2; next }
	{ key = $1 SUBSEP $2; v[key, ++c[key]] = $4; if (!(($1) in seen)) { seen[$1]; tools[++nt] = $1 } }
	function med(key,   n, i, j, t, a) {
		n = c[key]; for (i = 1; i <= n; i++) a[i] = v[key, i]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	END {
		printf "%d threads, median of %d runs; s/epoch = epoch examples / examples/s;\n", th, reps
		printf "GFLOP/s of the useful matrix products; %%peak against the OpenBLAS sgemm of the\n"
		printf "output layer'"'"'s shapes (and against the 2048^3 sgemm); %%ffn against its sgemm of\n"
		printf "the feed-forward layer'"'"'s forward product; %%step against OpenBLAS running a\n"
		printf "step'"'"'s products alone, each at its shape\n\n"
		printf "%-19s %-18s %9s %9s %8s %8s %14s %5s %6s %7s\n", "tool", "data", "examples", "ex/s", "s/epoch",
			"GFLOP/s", "%peak out(sq)", "%ffn", "%step", "ratio"
		for (d = 1; d <= nd; d++) {
			ds = order[d]; ref = med("torch-pad-longest" SUBSEP ds)
			for (t = 1; t <= nt; t++) {
				key = tools[t] SUBSEP ds; if (!c[key]) continue
				r = med(key); g = r * F[ds] / 1e9
				printf "%-19s %-18s %9d %9.1f %8.1f %8.1f %6.0f%% (%3.0f%%) %4.0f%% %5.0f%% %6.2fx\n", tools[t], ds, E[ds],
					r, E[ds] / r, g, 100 * g / S[ds, "out"], 100 * g / S[ds, "square"],
					100 * g / S[ds, "ffn"], S[ds, "step"] ? 100 * g / S[ds, "step"] : 0, r / ref
			}
			printf "%-19s %-18s sgemm peak %.1f GFLOP/s (2048^3), output layer %.1f (fwd %.1f, dh %.1f, dwte %.1f), FFN %.1f, a step'"'"'s products %.1f, kernel %s\n",
				"", "", S[ds, "square"], S[ds, "out"], S[ds, "fwd"], S[ds, "dh"], S[ds, "dw"], S[ds, "ffn"],
				S[ds, "step"], S[ds, "core"]
		}
		printf "ratio: examples/s over torch-pad-longest'"'"'s on the same data\n"
	}' "$results"
echo "load before: $load_before"
echo "load after:  $load_after"
echo "(raw runs: $results; logs in $WORK)"
