# A full disk, made by a file size limit (ulimit -f): every program that
# writes a file names it, exits 1 (write() fails with EFBIG: SIGXFSZ is
# ignored, not fatal) and leaves the file under its final name as it was,
# with no temporary file beside it. Standard output on a full device
# (/dev/full) is an error too.
. tests/lib.sh

cc -O2 -o "$T/gen-kaggle" scripts/gen-kaggle.c -lm || die "build gen-kaggle"
"$T/gen-kaggle" -n 5000 -s 3 -o "$T/events.csv" || die "gen-kaggle"
cs-ingest -q -p kaggle --by session -o "$T/raw.cseq" "$T/events.csv" || die "ingest"
cs-vocab build -q -F item,action -o "$T/vocab.txt" "$T/raw.cseq" || die "vocab"
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/enc.cseq" "$T/raw.cseq" || die "encode"
cs-mask split -q --random 0.1,0.1 -o "$T/s" "$T/enc.cseq" || die "split"
# Training on the small catalogue of t-bert4rec.sh: a model of 74 kB, its
# checkpoint 222 kB.
awk 'BEGIN {
	srand(7); print "user:seq:string\titem:event:string\ttime:event:int64"
	for (u = 0; u < 600; u++) {
		s = int(rand() * 120); n = 6 + int(rand() * 10)
		for (j = 0; j < n; j++) printf "u%d\tp%d\t%d\n", u, (s + j) % 120, 1000 * u + j
	}
}' | cs-cat -r -o "$T/b.raw.cseq" || die "catalogue"
cs-vocab build -q -o "$T/b.vocab.txt" "$T/b.raw.cseq" || die "vocab"
cs-vocab encode -q -v "$T/b.vocab.txt" "$T/b.raw.cseq" | cs-mask split -q -o "$T/b" || die "split"
cs-mask cloze -q --max-len 16 -o "$T/b.train.cseq" "$T/b.train.cseq" || die "cloze"
TRAIN="-q -j 1 -v $T/b.vocab.txt --hidden 32 --layers 1 --heads 2 --max-len 16 --batch 32 --epochs 1"
cs-train $TRAIN -o "$T/b.bin" "$T/b.train.cseq" || die "train"

# ulimit -f counts 512-byte blocks in dash (POSIX), 1024-byte ones in bash.
(ulimit -f 1; trap "" XFSZ; head -c 4096 /dev/zero > "$T/unit") 2> /dev/null
unit=$(wc -c < "$T/unit" | tr -d ' ')
KB16=$((16384 / unit)) KB128=$((131072 / unit))

# full LIMIT FILE... -- COMMAND: under ulimit -f LIMIT the command exits 1
# naming the first FILE, and every FILE keeps its earlier contents.
full() {
	limit=$1
	shift
	files=
	while [ "$1" != -- ]; do
		printf 'earlier\n' > "$1"
		files="$files $1"
		shift
	done
	shift
	(ulimit -f "$limit"; exec "$@") 2> "$T/stderr"
	rc=$?
	[ $rc -eq 1 ] || { cat "$T/stderr" >&2; die "expected exit 1 on a full disk, got $rc: $*"; }
	set -- $files
	stderr_has "$1: "
	stderr_has "File too large"
	for f in $files; do
		[ "$(cat "$f")" = earlier ] || die "'$f' changed by a failed write: $*"
	done
	[ -z "$(ls "$T" | grep '\.tmp\.')" ] || die "temporary file left: $(ls "$T" | grep '\.tmp\.')"
}

full $KB16 "$T/out.cseq" -- cs-ingest -q -p kaggle --by session -o "$T/out.cseq" "$T/events.csv"
full $KB16 "$T/out.txt" -- cs-vocab build -q -F item,action -o "$T/out.txt" "$T/raw.cseq"
full $KB16 "$T/out.cseq" -- cs-vocab encode -q -v "$T/vocab.txt" -o "$T/out.cseq" "$T/raw.cseq"
full $KB16 "$T/o.train.cseq" "$T/o.valid.cseq" "$T/o.test.cseq" -- \
	cs-mask split -q --random 0.1,0.1 -o "$T/o" "$T/enc.cseq"
full $KB16 "$T/out.cseq" -- cs-mask cloze -q -o "$T/out.cseq" "$T/s.train.cseq"
full $KB16 "$T/out.txt" -- cs-cat -o "$T/out.txt" "$T/enc.cseq"
ok "cs-ingest, cs-vocab build and encode, cs-mask split and cloze, cs-cat: exit 1, file named, kept"

# cs-train: the model (74 kB) past 16 kB; the checkpoint (222 kB) past
# 128 kB, every 5 steps (before the model) or at the end of the epoch
# (after it: the model is then new and whole).
full $KB16 "$T/m.bin" "$T/m.bin.ckpt" -- cs-train $TRAIN -o "$T/m.bin" "$T/b.train.cseq"
full $KB128 "$T/m.bin.ckpt" "$T/m.bin" -- cs-train $TRAIN --checkpoint-every 5 -o "$T/m.bin" \
	"$T/b.train.cseq"
rm -f "$T/m.bin"
full $KB128 "$T/m.bin.ckpt" -- cs-train $TRAIN -o "$T/m.bin" "$T/b.train.cseq"
cmp -s "$T/m.bin" "$T/b.bin" || die "the model written before the checkpoint failed is not whole"
ok "cs-train: a model or checkpoint that does not fit: exit 1, file named, kept"

# cs-recommend writes to standard output: the shell made the file, so what
# did fit stays in it, but the error is caught.
(ulimit -f $KB16; exec cs-recommend -q -m "$T/b.bin" -v "$T/b.vocab.txt" -k 10 "$T/b.test.cseq" \
	> "$T/rec.txt") 2> "$T/stderr"
expect_eq $? 1 "cs-recommend past the size limit"
stderr_has "write error: File too large"
ok "cs-recommend: a full standard output: exit 1"

if [ -w /dev/full ]; then
	test_must_fail cs-recommend -q -m "$T/b.bin" -v "$T/b.vocab.txt" -k 10 "$T/b.test.cseq" > /dev/full
	stderr_has "No space left on device"
	test_must_fail cs-cat "$T/enc.cseq" > /dev/full
	stderr_has "No space left on device"
	test_must_fail cs-vocab encode -q -v "$T/vocab.txt" -o /dev/full "$T/raw.cseq"
	stderr_has "/dev/full: write error: No space left on device"
	test_must_fail cs-eval -q -m "$T/b.bin" "$T/b.test.cseq" > /dev/full
	test_must_fail cs-train $TRAIN -o /dev/full --checkpoint "$T/c.ckpt" "$T/b.train.cseq"
	stderr_has "/dev/full: cannot write: No space left on device"
	ok "/dev/full: cs-recommend, cs-cat, cs-vocab, cs-eval and cs-train exit 1"
else
	echo "skip: no /dev/full"
fi
