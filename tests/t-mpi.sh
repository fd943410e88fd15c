# Data-parallel cs-train under mpirun, two processes on this machine: the
# same model as one process with the same global batch (up to the order
# of the sums), bit for bit the same on a second run, rank 0 alone
# writing, a resume that goes on to the same model, and a fault on one
# rank (bad setup, divergence, kill -9) stopping the job with one clear
# message and the last checkpoint intact.
. tests/lib.sh

command -v mpirun > /dev/null || { echo "skip: no mpirun (make deps installs Open MPI)"; exit 0; }
cs-train --version | grep -q '^data parallel: MPI' ||
	{ echo "skip: cs-train built without MPI (make deps, then rebuild)"; exit 0; }
# CI containers run as root, which Open MPI refuses unless told
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# containers (Docker's default seccomp) forbid the cross-memory attach of
# Open MPI's shared-memory transport: copy through the segment instead
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# a sanitized cs-train: Open MPI's own allocations are not our leaks
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
PY=${PYTHON:-/usr/bin/python3}
mpi2() { mpirun --oversubscribe -n 2 "$@"; }
# A rank's process: the last child of mpirun (pid $1).
rank_pid() { pgrep -P "$1" | tail -1; }

walks
cs-mask cloze -q --dupe 2 --mask-prob 0.3 --max-len 16 -o "$T/train.cseq" "$T/s.train.cseq" ||
	die "cloze"
OPTS="-q -j 1 -v $T/vocab.txt --hidden 16 --layers 1 --max-len 16 --batch 32 --valid $T/s.valid.cseq"

# close A B: the largest difference of any tensor of two model files
# (weights, and the AdamW moments of checkpoints), relative to the
# tensor's largest value, is below 1e-3. A wrong share of the dropout
# stream, of the loss normalisation or of the lazy rows is of order 1.
# The key bias is left out: the attention's softmax cancels it, so its
# gradient is rounding noise that AdamW turns into steps of lr, and two
# orders of summation move it apart by its own size.
cat > "$T/close.py" << 'EOF'
import sys
sys.path.insert(0, "scripts")
import csio
import numpy
_, a = csio.read_model(sys.argv[1])
_, b = csio.read_model(sys.argv[2])
if a.keys() != b.keys():
    sys.exit("different tensors: %s only in %s, %s only in %s" % (sorted(set(a) - set(b)), sys.argv[1], sorted(set(b) - set(a)), sys.argv[2]))
worst, name = 0.0, ""
for k in a:
    x, y = numpy.asarray(a[k], dtype=float), numpy.asarray(b[k], dtype=float)
    if k == "qkv_b":  # (L, 3C): query, key, value biases
        x, y = [numpy.delete(t.reshape(t.shape[0], 3, -1), 1, axis=1) for t in (x, y)]
    if x.size == 0:
        continue
    d = numpy.abs(x - y).max() / (numpy.abs(x).max() + 1e-12)
    if d > worst:
        worst, name = d, k
print("%s %.3g" % (name, worst))
sys.exit(0 if worst < 1e-3 else 1)
EOF
close() { "$PY" "$T/close.py" "$1" "$2" > "$T/diff" 2>&1 || die "$3: $(cat "$T/diff")"; }

# 1. Two ranks (the global batch of 32 split 16 + 16) equal one process,
# dropout, validation and early stopping included; only rank 0 writes:
# rank 1 is given other paths (mpirun's colon form), which stay empty.
mkdir "$T/r0" "$T/r1"
cs-train $OPTS --epochs 3 -o "$T/one.bin" "$T/train.cseq" || die "one process"
mpirun --oversubscribe -n 1 cs-train $OPTS --epochs 3 --log "$T/r0/log.tsv" -o "$T/r0/m.bin" \
	"$T/train.cseq" : -n 1 cs-train $OPTS --epochs 3 --log "$T/r1/log.tsv" -o "$T/r1/m.bin" \
	"$T/train.cseq" || die "two ranks"
close "$T/one.bin" "$T/r0/m.bin" "2 ranks against 1 process, model"
close "$T/one.bin.ckpt" "$T/r0/m.bin.ckpt" "2 ranks against 1 process, checkpoint"
[ -z "$(ls -A "$T/r1")" ] || die "rank 1 wrote: $(ls "$T/r1")"
expect_eq "$(wc -l < "$T/r0/log.tsv" | tr -d ' ')" 4 "log rows (header and 3 epochs)"
ok "2 ranks equal 1 process with the same global batch; rank 0 alone writes"

# 2. The sampled loss, its lazy AdamW rows the union over the ranks.
for s in uniform pop; do
	cs-train $OPTS --epochs 2 --loss sampled --sampler $s --negatives 20 -o "$T/s1.bin" \
		"$T/train.cseq" || die "sampled, one process"
	mpi2 cs-train $OPTS --epochs 2 --loss sampled --sampler $s --negatives 20 -o "$T/s2.bin" \
		"$T/train.cseq" || die "sampled, two ranks"
	close "$T/s1.bin.ckpt" "$T/s2.bin.ckpt" "sampled loss ($s)"
done
ok "sampled softmax with lazy AdamW: 2 ranks equal 1 process"

# The session head: its loss weighs positives (--pos-weight auto) over
# the global batch; validation AUC from the ranks' shares put together.
cc -O2 -o "$T/gen-kaggle" scripts/gen-kaggle.c -lm || die "build gen-kaggle"
"$T/gen-kaggle" -n 6000 -s 3 -o "$T/k.csv" || die "gen-kaggle"
cs-ingest -q -p kaggle --by session -o "$T/k.cseq" "$T/k.csv" || die "ingest"
cs-vocab build -q -F item,action -o "$T/kv.txt" "$T/k.cseq" || die "vocab"
cs-vocab encode -q -v "$T/kv.txt" -o "$T/ke.cseq" "$T/k.cseq" || die "encode"
cs-mask split -q --random 0.2,0.1 --seed 2 -o "$T/ks" "$T/ke.cseq" || die "split"
for p in train valid; do
	cs-mask session -q --vocab "$T/kv.txt" -o "$T/kss.$p.cseq" "$T/ks.$p.cseq" || die "session"
done
KOPTS="-j 1 -v $T/kv.txt --head session --inputs action --pos-weight auto --hidden 16 --layers 1
	--max-len 16 --batch 32 --epochs 2 --valid $T/kss.valid.cseq"
cs-train -q $KOPTS --log "$T/k1.tsv" -o "$T/k1.bin" "$T/kss.train.cseq" || die "session, one"
mpi2 cs-train -q $KOPTS --log "$T/k2.tsv" -o "$T/k2.bin" "$T/kss.train.cseq" || die "session, two"
close "$T/k1.bin.ckpt" "$T/k2.bin.ckpt" "session head"
# validation AUC, PR-AUC and log loss to 4 places
auc() { awk -F'\t' 'NR > 1 { printf "%.4f %.4f %.4f\n", $6, $7, $8 }' "$1"; }
expect_eq "$(auc "$T/k2.tsv")" "$(auc "$T/k1.tsv")" "validation of the session head on 2 ranks"
ok "session head: 2 ranks equal 1 process, validation across the ranks"

# 3. Bitwise reproducible for a number of ranks and threads.
mpi2 cs-train $OPTS --epochs 3 -o "$T/again.bin" "$T/train.cseq" || die "two ranks again"
cmp -s "$T/r0/m.bin" "$T/again.bin" || die "2 ranks twice: different models"
ok "2 ranks twice: the same model, bit for bit"

# 4. Resume: a 2-rank run stopped by SIGTERM to one rank (all stop, with
# a checkpoint) and resumed on 2 ranks ends bit for bit where an
# uninterrupted 2-rank run does; resumed by one process, close to it.
mpi2 cs-train $OPTS --epochs 30 -o "$T/full.bin" "$T/train.cseq" || die "uninterrupted"
rm -f "$T/k.ckpt"
mpirun --oversubscribe -n 2 cs-train $OPTS --epochs 30 --checkpoint-every 5 \
	--checkpoint "$T/k.ckpt" -o "$T/k.bin" "$T/train.cseq" 2> "$T/stderr" &
mp=$!
wait_file "$T/k.ckpt" || die "no checkpoint written"
kill -TERM "$(rank_pid $mp)" 2> /dev/null
wait $mp
rc=$?
if [ $rc -ne 0 ]; then
	stderr_has "interrupted: checkpoint written to '$T/k.ckpt'"
	[ "$(grep -c 'interrupted' "$T/stderr")" -eq 1 ] || die "not one message: $(cat "$T/stderr")"
	# the checkpoint carries its best model: a resume to another -o
	# writes it there too when validation never improves on it
	cp "$T/k.ckpt" "$T/k1.ckpt"
	rm -f "$T/k1.bin"
	mpi2 cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/k.ckpt" --checkpoint "$T/k.ckpt" \
		--valid "$T/s.valid.cseq" -o "$T/k.bin" "$T/train.cseq" || die "resume on 2 ranks"
	cmp -s "$T/k.bin" "$T/full.bin" || die "resumed 2-rank model differs from an uninterrupted run"
	cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/k1.ckpt" --checkpoint "$T/k1.ckpt" \
		--valid "$T/s.valid.cseq" -o "$T/k1.bin" "$T/train.cseq" || die "resume on 1 process"
	close "$T/k1.bin" "$T/full.bin" "2-rank checkpoint resumed by one process"
	ok "SIGTERM to one rank stops all with a checkpoint; --resume reaches the same model"
else
	echo "skip: training ended before the signal"
fi

# 5. Faults. One rank fails its setup (a memory limit of its own): the
# job stops, the rank says why, rank 0 says which rank failed.
test_must_fail mpirun --oversubscribe -n 1 cs-train $OPTS -o "$T/f.bin" "$T/train.cseq" : \
	-n 1 env CS_MEM_LIMIT=10k cs-train $OPTS -o "$T/f.bin" "$T/train.cseq"
stderr_has "cs-train: rank 1: model needs"
stderr_has "cs-train: stopped: rank 1 failed"
[ ! -e "$T/f.bin" ] || die "a model after a failed setup"
ok "a rank failing its setup stops the job, one message each"

# Divergence: every rank sees it; one message, the checkpoint kept.
cp "$T/one.bin" "$T/nan.bin"
test_must_fail mpi2 cs-train $OPTS --epochs 6 --lr 1 --weight-decay 3 --warmup 0 \
	--checkpoint-every 10 -o "$T/nan.bin" "$T/train.cseq"
stderr_has "training diverged: the "
[ "$(grep -c 'diverged' "$T/stderr")" -eq 1 ] || die "not one message: $(cat "$T/stderr")"
stderr_has "checkpoint '$T/nan.bin.ckpt' (step "
cmp -s "$T/one.bin" "$T/nan.bin" || die "the diverged run replaced the model"
cs-export -o "$T/nan.st" "$T/nan.bin.ckpt" || die "the kept checkpoint does not load"
ok "divergence on 2 ranks: one message, the last good files kept"

# kill -9 of one rank: mpirun ends the job and names the rank; the last
# checkpoint (written by rank 0 every step) is whole and resumes.
rm -f "$T/x.ckpt"
mpirun --oversubscribe -n 2 cs-train $OPTS --epochs 30 --checkpoint-every 1 \
	--checkpoint "$T/x.ckpt" -o "$T/x.bin" "$T/train.cseq" 2> "$T/stderr" &
mp=$!
wait_file "$T/x.ckpt" || die "no checkpoint written"
kill -KILL "$(rank_pid $mp)"
wait $mp
rc=$?
[ $rc -ne 0 ] || die "mpirun exited 0 after kill -9 of a rank"
grep -q "exited on signal 9" "$T/stderr" || die "no word of the killed rank: $(cat "$T/stderr")"
cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/x.ckpt" --checkpoint "$T/x.ckpt" \
	--valid "$T/s.valid.cseq" -o "$T/x.bin" "$T/train.cseq" || die "resume after kill -9"
ok "kill -9 of one rank stops the job; the checkpoint resumes"
