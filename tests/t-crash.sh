# Crash safety of cs-train. SIGKILL at random moments never leaves a
# corrupt model or checkpoint under its final name; --resume after any
# number of kills in a row ends with the model (bit for bit) and the log
# of an uninterrupted run, on one thread and on two; SIGINT and SIGTERM
# leave no temporary file; a diverging run stops with a clear message and
# keeps the last good files. CS_CRASH_SEED=N repeats a run's kill delays
# (their timing still varies); CS_CRASH_KILLS=N sets how many.
. tests/lib.sh

# The catalogue of t-bert4rec.sh: 600 users walking 120 items.
walks
cs-mask cloze -q --dupe 4 --mask-prob 0.3 --max-len 16 -o "$T/train.cseq" "$T/s.train.cseq" || die "cloze"
cs-cat "$T/s.test.cseq" | head -200 | cs-cat -r -o "$T/few.cseq" || die "a few test histories"

# 6 epochs of 94 steps, a checkpoint every 3 steps (about 190 in all, so
# that many kills land in a write): about 2 s uninterrupted.
MODEL="--hidden 32 --layers 1 --heads 2 --max-len 16 --batch 32 --lr 3e-3 --warmup 20
	--patience 20 --epochs 6"
run_opts() { echo "-q -j $1 -v $T/vocab.txt --valid $T/s.valid.cseq --checkpoint-every 3"; }
for j in 1 2; do
	cs-train $(run_opts $j) $MODEL --log "$T/ref$j.log" -o "$T/ref$j.bin" "$T/train.cseq" ||
		die "uninterrupted run, -j $j"
done
# The same seed and threads give the same model bit for bit (t-bert4rec.sh);
# other threads sum in another order.
if cmp -s "$T/ref1.bin" "$T/ref2.bin"; then echo "note: -j 1 and -j 2 agree bit for bit here"; fi
ok "uninterrupted runs on 1 and 2 threads"

# Other programs killed while writing leave nothing either: the output
# is a file without a name (O_TMPFILE) until it is complete. On a file
# system without O_TMPFILE it is named from the start, and SIGKILL leaves
# it (SIGTERM removes it).
anon=1
mkfifo "$T/fifo"
for sig in KILL TERM; do
	cs-cat -r -o "$T/out.cseq" "$T/fifo" &
	pid=$!
	exec 3> "$T/fifo"
	head -1000 "$T/events.txt" >&3 # part of the input, the pipe left open
	n=0
	until ls -l /proc/$pid/fd 2> /dev/null | grep -q "$T/#\|$T/out.cseq.tmp."; do # opened
		n=$((n + 1))
		[ $n -lt 100 ] || die "cs-cat -r did not open its output"
		sleep 0.05
	done
	ls -l /proc/$pid/fd | grep -q "$T/#" || anon=0
	kill -$sig $pid
	wait $pid 2> /dev/null
	exec 3>&-
	left=$(ls "$T" | grep '^out')
	if [ $anon -eq 0 ] && [ $sig = KILL ]; then
		rm -f "$T"/out.cseq.tmp.*
	else
		[ -z "$left" ] || die "cs-cat killed by SIG$sig left $left"
	fi
done
if [ $anon -eq 1 ]; then
	ok "cs-cat killed by SIGKILL or SIGTERM while writing leaves no file"
else
	ok "cs-cat killed by SIGTERM leaves no file (no O_TMPFILE here: SIGKILL leaves one)"
fi

SEED=${CS_CRASH_SEED:-$$}
NKILLS=${CS_CRASH_KILLS:-30}
echo "kill delays from seed $SEED (CS_CRASH_SEED=$SEED repeats them)"
awk -v s="$SEED" 'BEGIN { srand(s); for (i = 0; i < 2000; i++) printf "%.3f\n", rand() * 0.6 }' \
	> "$T/delays"

# After a kill: each file under its final name is absent or whole (it
# loads and scores), and a temporary name is left only by a kill in the
# instant between naming and renaming, and then holds a whole file too.
leftovers=0
check_files() {
	for f in "$D/m.bin" "$D/m.bin.ckpt"; do
		[ -e "$f" ] || continue
		cs-eval -q -m "$f" "$T/few.cseq" > /dev/null 2> "$T/eval.err" ||
			{ cat "$T/eval.err" >&2; die "after kill $kills (delay $delay s): '$f' is corrupt"; }
	done
	for f in "$D"/*; do
		[ -e "$f" ] || continue
		case $f in
		"$D"/m.bin | "$D"/m.bin.ckpt | "$D"/log.tsv) ;;
		"$D"/m.bin.tmp.?????? | "$D"/m.bin.ckpt.tmp.??????)
			[ $anon -eq 0 ] || cs-eval -q -m "$f" "$T/few.cseq" > /dev/null 2>&1 ||
				die "after kill $kills: a partial temporary file '$f'"
			leftovers=$((leftovers + 1))
			rm -f "$f" ;;
		"$D"/log.tsv.tmp.??????) # a resume's rewrite of the log (cs_ofile too)
			[ $anon -eq 0 ] || awk -F'\t' 'NR == 1 { n = NF; ok = $1 == "epoch"; next }
				NF != n { ok = 0 } END { exit !(ok && NR) }' "$f" ||
				die "after kill $kills: a partial temporary log '$f'"
			leftovers=$((leftovers + 1))
			rm -f "$f" ;;
		*) die "after kill $kills: unexpected file '$f'" ;;
		esac
	done
}

# A finished chain of runs must end as the uninterrupted run did.
same_as_uninterrupted() {
	cmp -s "$D/m.bin" "$T/ref$1.bin" ||
		die "-j $1: the model after $rounds kills and resumes differs from an uninterrupted run"
	# the log's loss and validation metrics, not its speeds and times
	cut -f 1-3,6- "$T/ref$1.log" > "$T/want.log"
	cut -f 1-3,6- "$D/log.tsv" > "$T/got.log"
	cmp -s "$T/want.log" "$T/got.log" ||
		{ diff "$T/want.log" "$T/got.log" >&2; die "-j $1: the log after $rounds kills differs"; }
}

# Kill a run (a fresh one, or a resume from the checkpoint left) at a
# random moment, again and again; when a chain of runs finishes, compare
# it and start another.
kill_chains() {
	j=$1 want=$2
	D="$T/k$j"
	rm -rf "$D"
	mkdir "$D"
	rounds=0 chains=0 most=0
	while [ $kills -lt $want ]; do
		delay=$(sed -n "$((kills + chains + 1))p" "$T/delays")
		if [ -e "$D/m.bin.ckpt" ]; then
			cs-train $(run_opts $j) --resume "$D/m.bin.ckpt" --log "$D/log.tsv" \
				-o "$D/m.bin" "$T/train.cseq" 2> "$T/run.err" &
		else
			cs-train $(run_opts $j) $MODEL --log "$D/log.tsv" -o "$D/m.bin" \
				"$T/train.cseq" 2> "$T/run.err" &
		fi
		pid=$!
		sleep "$delay"
		kill -KILL $pid 2> /dev/null
		wait $pid 2> /dev/null # no 'Killed'
		rc=$?
		if [ $rc -eq 137 ]; then
			kills=$((kills + 1))
			rounds=$((rounds + 1))
			check_files
			continue
		fi
		# the run ended before the kill, or a kill fell after its last checkpoint
		if [ $rc -ne 0 ] && ! grep -q "nothing to resume" "$T/run.err"; then
			cat "$T/run.err" >&2
			die "-j $j: a run after $rounds kills exited $rc"
		fi
		same_as_uninterrupted $j
		[ $rounds -gt $most ] && most=$rounds
		chains=$((chains + 1))
		rounds=0
		rm -f "$D"/*
	done
	# finish the chain in progress
	if [ -e "$D/m.bin.ckpt" ]; then
		cs-train $(run_opts $j) --resume "$D/m.bin.ckpt" --log "$D/log.tsv" -o "$D/m.bin" \
			"$T/train.cseq" 2> "$T/run.err" ||
			grep -q "nothing to resume" "$T/run.err" ||
			{ cat "$T/run.err" >&2; die "-j $j: the last resume failed"; }
	else
		cs-train $(run_opts $j) $MODEL --log "$D/log.tsv" -o "$D/m.bin" "$T/train.cseq" ||
			die "-j $j: fresh run"
	fi
	same_as_uninterrupted $j
	[ $rounds -gt $most ] && most=$rounds
	chains=$((chains + 1))
}

kills=0
kill_chains 1 $((NKILLS * 2 / 3))
k1=$kills c1=$chains m1=$most
kill_chains 2 $NKILLS
# A file is named only for the few microseconds before its rename (named
# from the start, about one kill in three leaves one, ten of 30). Whether a
# kill lands in that instant is chance, and faster steps checkpoint more
# often: 2 of 30 was seen once in seven runs, so the bound is a tenth of
# the kills, well apart from the third a named file would leave.
[ $anon -eq 0 ] || [ $leftovers -le $((kills / 10)) ] || die "$kills kills left $leftovers temporary files"
ok "SIGKILL: $kills kills ($k1 on -j 1 in $c1 chains of runs, up to $m1 kills in a row;" \
	"$((kills - k1)) on -j 2 in $chains chains, up to $most in a row): the model and the" \
	"checkpoint always whole, every chain ending bit for bit as the uninterrupted run;" \
	"$leftovers temporary files left"

# SIGINT and SIGTERM at random moments (loading the data, training,
# writing): a checkpoint that resumes, or a death by the signal, and no
# temporary file either way. A background job of a script ignores SIGINT
# (POSIX): env --default-signal gives it back its default.
D="$T/sig"
i=0
sigs="TERM INT TERM INT TERM INT"
dflt="env --default-signal=INT"
$dflt true 2> /dev/null || { dflt=; sigs="TERM TERM TERM"; echo "skip: SIGINT (env --default-signal)"; }
for sig in $sigs; do
	rm -rf "$D"
	mkdir "$D"
	i=$((i + 1))
	delay=$(sed -n "$((1000 + i))p" "$T/delays")
	$dflt cs-train $(run_opts 1) $MODEL -o "$D/m.bin" "$T/train.cseq" 2> "$T/run.err" &
	pid=$!
	sleep "$delay"
	kill -$sig $pid 2> /dev/null
	wait $pid 2> /dev/null
	rc=$?
	ls "$D" | grep -q '\.tmp\.' && die "SIG$sig after $delay s left a temporary file: $(ls "$D")"
	case $rc in
	1)
		grep -q "interrupted: checkpoint written to '$D/m.bin.ckpt'" "$T/run.err" ||
			{ cat "$T/run.err" >&2; die "SIG$sig: no checkpoint message"; }
		cs-eval -q -m "$D/m.bin.ckpt" "$T/s.test.cseq" > /dev/null || die "SIG$sig: bad checkpoint" ;;
	0 | 130 | 143) ;; # done before the signal, or killed by it while loading
	*) cat "$T/run.err" >&2; die "SIG$sig after $delay s: exit $rc" ;;
	esac
done
# the last one resumes to the uninterrupted model
if [ -e "$D/m.bin.ckpt" ]; then
	cs-train $(run_opts 1) --resume "$D/m.bin.ckpt" -o "$D/m.bin" "$T/train.cseq" 2> "$T/run.err" ||
		grep -q "nothing to resume" "$T/run.err" || die "resume after SIG$sig"
	cmp -s "$D/m.bin" "$T/ref1.bin" || die "resumed after SIG$sig: not the uninterrupted model"
fi
ok "SIGINT and SIGTERM: a checkpoint that resumes, no temporary file"

# A signal ignored from the start stays ignored: SIGINT in a background
# job, SIGHUP under nohup.
cs-train -q -j 1 -v "$T/vocab.txt" $MODEL --epochs 1 -o "$T/bg.bin" "$T/train.cseq" &
pid=$!
sleep 0.2
kill -INT $pid
wait $pid || die "a background job stopped on SIGINT"
nohup cs-train -q -j 1 -v "$T/vocab.txt" $MODEL --epochs 1 -o "$T/bg.bin" "$T/train.cseq" \
	> /dev/null 2>&1 &
pid=$!
sleep 0.2
kill -HUP $pid
wait $pid || die "nohup cs-train died of SIGHUP"
ok "SIGINT in a background job and SIGHUP under nohup stay ignored"

# A checkpoint of a good run, early in it: killed once the first is written.
midrun_ckpt() {
	rm -f "$1"
	cs-train $(run_opts 1) $MODEL --checkpoint "$1" -o "$T/mid.bin" "$T/train.cseq" &
	pid=$!
	wait_file "$1" || die "no checkpoint written"
	kill -KILL $pid
	wait $pid 2> /dev/null
}

# Divergence: a learning rate with weight decay that blows the weights up
# (decay factor 1 - lr * wd = -2 a step). The run stops at the first loss
# or gradient that is not finite, names the step and the files kept, and
# leaves them as they were: here the model of an earlier good run.
D="$T/nan"
mkdir "$D"
cp "$T/ref1.bin" "$D/m.bin"
test_must_fail cs-train -q -j 1 -v "$T/vocab.txt" $MODEL --lr 1 --weight-decay 3 --warmup 0 \
	--checkpoint-every 10 -o "$D/m.bin" "$T/train.cseq"
stderr_has "training diverged: the "
grep -q "is NaN at step\|is inf at step\|is -inf at step" "$T/stderr" || die "no step in: $(cat "$T/stderr")"
stderr_has "checkpoint '$D/m.bin.ckpt' (step "
step=$(sed -n 's/.*at step \([0-9]*\).*/\1/p' "$T/stderr")
kept=$(sed -n 's/.*(step \([0-9]*\)) is kept.*/\1/p' "$T/stderr")
[ -n "$kept" ] && [ "$kept" -lt "$step" ] && [ $((kept % 10)) -eq 0 ] ||
	die "kept checkpoint of step '$kept', diverged at '$step'"
# (the weights double every step: they pass 1e19 long before the end of
# the first epoch, its model save, whatever the BLAS kernel)
if grep -q "model '$D/m.bin' (epoch" "$T/stderr"; then
	cs-eval -q -m "$D/m.bin" "$T/few.cseq" > /dev/null || die "the kept model does not load"
else
	cmp -s "$D/m.bin" "$T/ref1.bin" || die "a diverging run overwrote the model"
fi
cs-eval -q -m "$D/m.bin.ckpt" "$T/s.test.cseq" > /dev/null || die "the kept checkpoint does not load"
# resuming from it diverges again at the same step, writing nothing
cp "$D/m.bin.ckpt" "$T/kept.ckpt"
test_must_fail cs-train -q -j 1 -v "$T/vocab.txt" --resume "$D/m.bin.ckpt" -o "$D/m.bin" "$T/train.cseq"
stderr_has "at step $step "
cmp -s "$D/m.bin.ckpt" "$T/kept.ckpt" || die "a diverging resume changed the checkpoint"
ok "divergence: exit 1 at step $step, the checkpoint of step $kept and the model kept"

# A checkpoint whose weights or moments are not finite numbers (changed
# behind the checksum's back, by scripts/ or a bad disk) is refused, and
# one with a huge moment that turns a weight infinite is never saved.
poison() { # FILE TENSOR INDEX VALUE: set a float, fix the checksum
	python3 - "$TOP/scripts" "$@" << 'EOF'
import struct, sys
sys.path.insert(0, sys.argv.pop(1))
import csio
path, name, index, value = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), float(sys.argv[4])
b = bytearray(open(path, 'rb').read())
p = 8
(nmeta,) = struct.unpack_from('<I', b, p); p += 4
for _ in range(nmeta):
    (kl,) = struct.unpack_from('<H', b, p); p += 2 + kl
    (vl,) = struct.unpack_from('<I', b, p); p += 4 + vl
(nt,) = struct.unpack_from('<I', b, p); p += 4
for _ in range(nt):
    (nl,) = struct.unpack_from('<H', b, p); p += 2
    tn = bytes(b[p:p + nl]); p += nl
    (n,) = struct.unpack_from('<Q', b, p); p += 8
    if tn == name:
        struct.pack_into('<f', b, p + 4 * index, value)
        break
    p += 4 * n
else:
    sys.exit('no tensor ' + sys.argv[2])
(version,) = struct.unpack_from('<I', b, 4)
struct.pack_into('<Q', b, len(b) - 8, csio.model_checksum(version, bytes(b[:-8])))
open(path, 'wb').write(b)
EOF
}
if command -v python3 > /dev/null; then
	cp "$D/m.bin.ckpt" "$T/nan.ckpt"
	poison "$T/nan.ckpt" adam.v 7 nan || die "poison"
	test_must_fail cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/nan.ckpt" -o "$T/x.bin" "$T/train.cseq"
	stderr_has "nan.ckpt: tensor 'adam.v' holds a NaN at index 7"
	test_must_fail cs-eval -q -m "$T/nan.ckpt" "$T/s.test.cseq"
	stderr_has "holds a NaN"
	cp "$T/ref1.bin" "$T/inf.bin"
	poison "$T/inf.bin" wte 40 inf || die "poison"
	test_must_fail cs-recommend -q -m "$T/inf.bin" -v "$T/vocab.txt" "$T/s.test.cseq"
	stderr_has "tensor 'wte' holds an infinity at index 40"
	# a finite moment of 3e38 makes a weight infinite at the next step,
	# before any loss or gradient shows it: the save refuses it
	midrun_ckpt "$T/big.ckpt"
	poison "$T/big.ckpt" adam.m 0 3e38 || die "poison"
	test_must_fail cs-train $(run_opts 1) --resume "$T/big.ckpt" --checkpoint-every 1 \
		--checkpoint "$T/big2.ckpt" -o "$T/big.bin" "$T/train.cseq"
	stderr_has "training diverged: a weight of 'wte' is "
	stderr_has "this run wrote no model or checkpoint"
	[ ! -e "$T/big2.ckpt" ] && [ ! -e "$T/big.bin" ] || die "a weight that is not finite was saved"
	ok "NaN and inf in files are refused, and never saved"
else
	echo "skip: no python3 to poison a checkpoint"
fi

# A resume must get the data of the run it continues.
midrun_ckpt "$T/v.ckpt"
cs-mask cloze -q --dupe 3 --mask-prob 0.3 --max-len 16 -o "$T/train3.cseq" "$T/s.train.cseq" || die "cloze"
test_must_fail cs-train -q -j 1 -v "$T/vocab.txt" --valid "$T/s.valid.cseq" --resume "$T/v.ckpt" \
	-o "$T/x.bin" "$T/train3.cseq"
stderr_has "trained on 3000 examples, not 2400"
test_must_fail cs-train -q -j 1 -v "$T/vocab.txt" --resume "$T/v.ckpt" -o "$T/x.bin" "$T/train.cseq"
stderr_has "resume with the same --valid split"
ok "a resume on other examples or without --valid is refused"
