# cs-recommend as a service: one history written, its answer read while the
# input stays open, then the next; the answers equal those of a batch run.
. tests/lib.sh

awk 'BEGIN {
	srand(3); print "user:seq:string\titem:event:string"
	for (u = 0; u < 80; u++) {
		s = int(rand() * 40); n = 4 + int(rand() * 6)
		for (j = 0; j < n; j++) printf "u%d\tp%d\n", u, (s + j) % 40
	}
}' > "$T/events.txt"
cs-cat -r -o "$T/raw.cseq" "$T/events.txt" || die "cs-cat -r"
cs-vocab build -q -o "$T/vocab.txt" "$T/raw.cseq" || die "vocab build"
cs-vocab encode -q -v "$T/vocab.txt" -o "$T/enc.cseq" "$T/raw.cseq" || die "encode"
cs-mask cloze -q --dupe 1 --max-len 8 -o "$T/train.cseq" "$T/enc.cseq" || die "cloze"
cs-train -q -v "$T/vocab.txt" --hidden 16 --layers 1 --heads 2 --max-len 8 --epochs 1 -j 1 \
	-o "$T/m.bin" "$T/train.cseq" || die "cs-train"
ok "a small model"

printf 'a\tp3 p4 p5\n' > "$T/h1.txt"
printf 'b\tp20 p21\n' > "$T/h2.txt"
rec() { cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" --text -k 3 "$@"; }
rec "$T/h1.txt" > "$T/want1.txt" && rec "$T/h2.txt" > "$T/want2.txt" || die "batch run"
expect_eq "$(wc -l < "$T/want1.txt" | tr -d ' ')" 3 "lines of one answer"

# Input and output through FIFOs; the writer keeps the input open (fd 3).
mkfifo "$T/in" "$T/out" || die "mkfifo"
rec < "$T/in" > "$T/out" 2> "$T/serve.err" &
pid=$!
exec 3> "$T/in" 4< "$T/out"
# answer N FILE: N lines of the answer within 20 s into FILE
answer() {
	timeout 20 head -n "$1" <&4 > "$2"
	rc=$?
	[ $rc -eq 0 ] || { exec 3>&-; kill "$pid" 2> /dev/null; die "no answer while the input is open (head: $rc)"; }
}
cat "$T/h1.txt" >&3
answer 3 "$T/got1.txt"
cmp -s "$T/want1.txt" "$T/got1.txt" || die "first answer differs from the batch run's"
cat "$T/h2.txt" >&3
answer 3 "$T/got2.txt"
cmp -s "$T/want2.txt" "$T/got2.txt" || die "second answer differs from the batch run's"
# a whole line is answered while the next is half written
printf 'd\tp1 p2\n' | rec > "$T/want3.txt" && printf 'c\tp7 p8\n' | rec > "$T/want4.txt" ||
	die "batch run"
printf 'd\tp1 p2\nc\tp7 ' >&3
answer 3 "$T/got3.txt"
cmp -s "$T/want3.txt" "$T/got3.txt" || die "answer before a half-written line"
printf 'p8\n' >&3
answer 3 "$T/got4.txt"
cmp -s "$T/want4.txt" "$T/got4.txt" || die "answer to a line written in two pieces"
exec 3>&-
wait "$pid" || { cat "$T/serve.err" >&2; die "cs-recommend exit $? at the end of input"; }
[ -z "$(cat <&4)" ] || die "output after the last answer"
exec 4<&-
ok "one history at a time through a FIFO: each answered while the input stays open"

# Many histories at once: the same lines as one by one.
cat "$T/h1.txt" "$T/h2.txt" "$T/h1.txt" | rec --batch 2 > "$T/many.txt" || die "--batch 2"
cat "$T/want1.txt" "$T/want2.txt" "$T/want1.txt" | cmp -s - "$T/many.txt" || die "batched answers"
ok "batches of what is available give the same answers"

# --json: an object per history, the same items and scores as the lines;
# keys with quotes, backslashes and non-ASCII come out as JSON strings.
printf 'q"x\\y\tp3 p4 p5\n\303\251t\303\251\tp20 p21\n' > "$T/hj.txt"
rec "$T/hj.txt" > "$T/hj.tsv" && rec -J "$T/hj.txt" > "$T/hj.json" || die "--json"
python3 - "$T/hj.tsv" "$T/hj.json" <<'EOF2' || die "--json differs from the lines"
import json, re, sys
esc = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "&": ""}
def unesc(s):  # cs-formats(5): \\ \t \n \r \xHH \&
    b = re.sub(rb"\\(x[0-9a-fA-F]{2}|.)", lambda m: bytes([int(m[1][1:], 16)])
               if m[1][:1] == b"x" else esc[m[1].decode()].encode(), s.encode("utf-8"))
    return b.decode("utf-8")
tsv = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")]
tsv = [[unesc(r[0])] + r[1:] for r in tsv]
objs = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert [o["key"] for o in objs] == ['q"x\\y', "\u00e9t\u00e9"], objs
for o in objs:
    assert set(o) == {"key", "items", "scores"}, o
    rows = [r for r in tsv if r[0] == o["key"]]
    assert len(rows) == 3 and o["items"] == [r[2] for r in rows], (o, rows)
    assert [int(r[1]) for r in rows] == [1, 2, 3]
    assert o["scores"] == [float(r[3]) for r in rows], (o, rows)
EOF2
cs-recommend -q -m "$T/m.bin" -v "$T/vocab.txt" --json -k 2 "$T/enc.cseq" > "$T/enc.json" ||
	die "--json from a stream"
python3 -m json.tool --json-lines "$T/enc.json" > /dev/null || die "--json from a stream: not JSON"
expect_eq "$(wc -l < "$T/enc.json" | tr -d ' ')" 80 "--json: an object per history"
ok "--json"

# scripts/bench-latency.py runs (a smoke test: its figures are not checked)
if [ -x /usr/bin/python3 ]; then
	cat "$T/h1.txt" "$T/h2.txt" > "$T/hist.txt"
	/usr/bin/python3 scripts/bench-latency.py --bin "$TOP/cs-recommend" -k 3 -n 5 --warm 1 -r 1 \
		"$T/m.bin" "$T/vocab.txt" "$T/hist.txt" > "$T/lat.txt" 2>&1 || { cat "$T/lat.txt" >&2; die "bench-latency.py"; }
	grep -q '^  p50 .* p99 ' "$T/lat.txt" && grep -q "the settings' change" "$T/lat.txt" ||
		{ cat "$T/lat.txt" >&2; die "bench-latency.py output"; }
	ok "bench-latency.py"
fi
