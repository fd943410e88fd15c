# Kernels and the restart of the model programs: OpenBLAS's kernel by what
# the CPU can do (and OPENBLAS_CORETYPE over it), the Cloze loss's
# products by CS_KERNEL and the CPU, a bad CS_KERNEL as a usage error, and
# the process name kept across the restart.
. tests/lib.sh
unset CS_BLAS_REEXEC CS_BLAS_DETECTED OPENBLAS_CORETYPE OMP_WAIT_POLICY OPENBLAS_THREAD_TIMEOUT CS_KERNEL

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }

awk 'BEGIN {
	srand(3); print "user:seq:string\titem:event:string\ttime:event:int64"
	for (u = 0; u < 100; u++) for (j = 0; j < 8; j++) printf "u%d\tp%d\t%d\n", u, (u + j) % 70, j
}' > "$T/events.txt"
cs-cat -r -o "$T/raw.cseq" "$T/events.txt" &&
cs-vocab build -q -o "$T/vocab.txt" "$T/raw.cseq" &&
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/enc.cseq" "$T/raw.cseq" &&
cs-mask cloze -q --dupe 1 --max-len 8 -o "$T/train.cseq" "$T/enc.cseq" || die "prepare"
train() { cs-train -q -v "$T/vocab.txt" --hidden 32 --layers 1 --max-len 8 --epochs 1 -j 1 \
	-o "$T/m.bin" --verbose "$@" "$T/train.cseq" 2> "$T/stderr" || { cat "$T/stderr" >&2; die "cs-train $*"; }; }
# core KIND: the kernel and how it was chosen, from the verbose line
core() { sed -n 's/.*OpenBLAS kernel \([^ ]*\) (\([^)]*\)).*/\1 (\2)/p' "$T/stderr"; }
loss() { sed -n 's/.*loss full softmax, \(.*\)$/\1/p' "$T/stderr"; }

# The kernel OpenBLAS runs as it loads (its own choice, or the
# environment's OPENBLAS_CORETYPE, as on the machine of issue 15), with the
# restart turned off: the fallback
for ct in "" Prescott; do # Prescott runs on any x86-64
	[ -n "$ct" ] && [ "$(uname -m)" != x86_64 ] && continue
	OPENBLAS_CORETYPE=$ct CS_BLAS_REEXEC=0 train
	own=$(core)
	if [ -n "$ct" ]; then
		expect_eq "$own" "$ct (OPENBLAS_CORETYPE)" "kernel by hand"
	else
		case $own in *"(OpenBLAS's choice)") ;; *) die "no restart: '$own'" ;; esac
	fi
	own=${own%% *}
	OPENBLAS_CORETYPE=$ct train
	if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
		case $own in
		SkylakeX|Cooperlake|SapphireRapids) want="$own (${ct:+OPENBLAS_CORETYPE}${ct:-OpenBLAS's choice})" ;;
		*) want="SkylakeX (chosen by cs for AVX-512, in place of $own)" ;;
		esac
	else
		want="$own (${ct:+OPENBLAS_CORETYPE}${ct:-OpenBLAS's choice})"
	fi
	expect_eq "$(core)" "$want" "kernel with OPENBLAS_CORETYPE='$ct'"
	ok "OpenBLAS kernel ${ct:+over $ct}: $want"
done

# The loss's products: bfloat16 where the CPU has them, FP32 by request
train
if has amx_tile && has amx_bf16; then want="AMX bfloat16"
elif has avx512_bf16; then want=AVX512-BF16
else want=FP32; fi
case $want in
AMX*) ;; # the kernel may refuse the tile state: either answer
*) expect_eq "$(loss)" "$want" "cloze loss" ;;
esac
CS_KERNEL=fp32 train
expect_eq "$(loss)" FP32 "cloze loss with CS_KERNEL=fp32"
CS_KERNEL=bf16 train
expect_eq "$(loss)" "$(has avx512_bf16 && echo AVX512-BF16 || echo FP32)" "cloze loss with CS_KERNEL=bf16"
cs-train -q -v "$T/vocab.txt" --hidden 48 --heads 2 --layers 1 --max-len 8 --epochs 1 -j 1 \
	-o "$T/m48.bin" --verbose "$T/train.cseq" 2> "$T/stderr" || die "cs-train --hidden 48"
expect_eq "$(loss)" FP32 "cloze loss at C 48"
ok "cloze loss: $want; FP32 with CS_KERNEL=fp32"

# A bad CS_KERNEL is a usage error in every program that reads it.
for p in "cs-train -v $T/vocab.txt -o $T/x.bin $T/train.cseq" "cs-eval -m $T/m.bin $T/enc.cseq" \
	"cs-recommend -m $T/m.bin -v $T/vocab.txt $T/enc.cseq"; do
	CS_KERNEL=avx-512 $p > /dev/null 2> "$T/stderr"; rc=$?
	expect_eq $rc 2 "exit status of CS_KERNEL=avx-512 ${p%% *}"
	stderr_has "${p%% *}: invalid value 'avx-512' in CS_KERNEL (expected auto, amx, bf16, fp32, avx512 or c)"
done
ok "a bad CS_KERNEL is a usage error"

# The restart keeps the name: ps, pgrep and pidof see cs-train, not exe.
# cs-train waits on the FIFO after its set-up (and its restart).
mkfifo "$T/fifo" || die "mkfifo"
cs-train -q -v "$T/vocab.txt" -o "$T/f.bin" "$T/fifo" 2> "$T/stderr" &
pid=$!
i=0
while ! tr '\0' '\n' < /proc/$pid/environ 2> /dev/null | grep -q '^CS_BLAS_REEXEC=' && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1))
done
name=$(cat /proc/$pid/comm 2> /dev/null)
found=$(pgrep -x cs-train 2> /dev/null | grep -x "$pid")
exec 3> "$T/fifo" # let it go: an empty input
exec 3>&-
wait $pid
[ $i -lt 100 ] || die "cs-train did not restart"
expect_eq "$name" cs-train "process name after the restart"
if command -v pgrep > /dev/null; then
	expect_eq "$found" "$pid" "pgrep -x cs-train"
fi
ok "the process keeps its name across the restart"
