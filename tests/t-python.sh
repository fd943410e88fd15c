#!/bin/sh
# The Python reader (scripts/csio.py) against cs-cat and cs-vocab, and
# cs-export's safetensors loaded into numpy against the model file.
. tests/lib.sh
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import zstandard, numpy' 2>/dev/null ||
	{ echo "skip: $PY lacks zstandard or numpy (make deps)"; exit 0; }
export PYTHONPATH="$TOP/scripts"

# same_json A B: two files of JSON lines hold the same values, floats as float32.
same_json() {
	"$PY" - "$1" "$2" <<'EOF' || die "$1 and $2 differ"
import json, struct, sys
def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return struct.pack("<f", a) == struct.pack("<f", b) or a == b == 0  # cs-cat writes -0
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b
x = [json.loads(l) for l in open(sys.argv[1])]
y = [json.loads(l) for l in open(sys.argv[2])]
assert len(x) == len(y), (len(x), len(y))
for i, (a, b) in enumerate(zip(x, y)):
    assert same(a, b), (i, a, b)
EOF
}

# Escapes, empty strings, extreme numbers, a sequence without events.
printf '%s\n' '#meta	source	hand' \
	'user:seq:string	item:event:string	time:event:int64	price:event:float32' \
	'u1	a\tb	-9223372036854775808	0.1' 'u1		9223372036854775807	-0' \
	'u2	\N	\N	\N' 'u3	x\\y\nz	0	3.4028235e+38' >"$T/a.txt"
cs-cat -r -o "$T/a.cseq" "$T/a.txt" || die "cs-cat -r"
cs-cat -j "$T/a.cseq" >"$T/a.want" || die "cs-cat -j"
"$PY" "$TOP/scripts/csio.py" "$T/a.cseq" >"$T/a.got" || die "csio.py"
same_json "$T/a.got" "$T/a.want"
"$PY" -c 'import csio, sys
s = csio.Stream(sys.argv[1])
assert s.fields[0] == ("user", "seq", "string", 0) and s.fields[3][2] == "float32", s.fields
assert s.meta == {"source": "hand"}, s.meta
n = sum(1 for _ in s)
assert (s.records, s.events) == (3, 3) and n == 3' "$T/a.cseq" || die "schema, metadata, counts"
head -c $(($(wc -c <"$T/a.cseq") - 6)) "$T/a.cseq" >"$T/cut.cseq"
"$PY" "$TOP/scripts/csio.py" "$T/cut.cseq" >/dev/null 2>"$T/stderr" && die "a truncated stream read"
stderr_has "csio:"
ok "streams: the same values as cs-cat -j, schema and metadata, truncation caught"

K=kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
if [ -f "$DATA/$K" ]; then
	cs-ingest -q -p kaggle --by session "$DATA/$K" -o "$T/k.cseq" 2>/dev/null || die "ingest"
	cs-cat -j "$T/k.cseq" >"$T/k.want" || die "cs-cat -j"
	"$PY" "$TOP/scripts/csio.py" - <"$T/k.cseq" >"$T/k.got" || die "csio.py from stdin"
	same_json "$T/k.got" "$T/k.want"
	# vocabularies: ids decoded in Python as cs-vocab decodes them
	cs-vocab build -q -F item,action,brand -o "$T/v.txt" "$T/k.cseq" 2>/dev/null || die "vocab"
	cs-vocab encode -q -v "$T/v.txt" -o "$T/e.cseq" "$T/k.cseq" || die "encode"
	cs-vocab decode -q -v "$T/v.txt" "$T/e.cseq" | cs-cat -j >"$T/d.want" || die "decode"
	"$PY" - "$T/e.cseq" "$T/v.txt" >"$T/d.got" <<'EOF' || die "decoding in Python"
import csio, json, sys
v = csio.read_vocab(sys.argv[2])
s = csio.Stream(sys.argv[1])
ids = {name for name, _, typ, _ in s.fields if typ == "id"}
assert ids == {"item", "action", "brand"}, ids
for name, _, _, fp in s.fields:
    if name in ids:
        assert "%016x" % fp == v[name].fingerprint, name
for rec in s:
    for f in ids:
        rec[f] = [v[f].tokens[i] for i in rec[f]]
    print(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
assert v["item"].id(v["item"].tokens[3]) == 3 and v["item"].id("no such item") == 2
EOF
	same_json "$T/d.got" "$T/d.want"
	ok "the Kaggle head through a pipe, and a vocabulary"
fi

# Models: a tiny one, exported and loaded into numpy.
awk 'BEGIN { srand(3); print "user:seq:string\titem:event:string"
	for (u = 0; u < 200; u++) { s = int(rand() * 50); for (j = 0; j < 8; j++) printf "u%d\tp%d\n", u, (s + j) % 50 } }' |
	cs-cat -r -o "$T/raw.cseq" || die "events"
cs-vocab build -q -o "$T/mv.txt" "$T/raw.cseq" || die "vocab"
cs-vocab encode -q -v "$T/mv.txt" "$T/raw.cseq" | cs-mask cloze -q --max-len 8 -o "$T/c.cseq" || die "cloze"
cs-train -q -v "$T/mv.txt" --hidden 16 --layers 2 --heads 2 --max-len 8 --epochs 1 -j 1 \
	--checkpoint-every 5 -o "$T/m.bin" "$T/c.cseq" || die "cs-train"
cs-export -o "$T/m.safetensors" "$T/m.bin" || die "cs-export"
cs-export "$T/m.bin" >"$T/m2.safetensors" || die "cs-export to stdout"
cmp "$T/m.safetensors" "$T/m2.safetensors" || die "stdout differs"
"$PY" - "$T/m.bin" "$T/m.safetensors" <<'EOF' || die "the export differs from the model"
import csio, numpy, sys
meta, t = csio.read_model(sys.argv[1])
smeta, s = csio.read_safetensors(sys.argv[2])
assert smeta == meta, "metadata"
assert sorted(t) == sorted(s), (sorted(t), sorted(s))
V, C, L, FF, P = (int(meta[k]) for k in ("V", "C", "L", "FF", "P"))
want = {"wte": (V, C), "wpe": (P, C), "qkv_w": (L, 3 * C, C), "fc_w": (L, FF, C),
        "fc2_w": (L, C, FF), "ln1_w": (L, C), "out_b": (V,), "head_w": (C, C)}
for name, shape in want.items():
    assert s[name].shape == shape and t[name].shape == shape, (name, s[name].shape, shape)
for name in t:
    assert s[name].dtype == numpy.float32 and numpy.array_equal(t[name], s[name]), name
assert V == 53 and C == 16 and L == 2
EOF
# a checkpoint (kept after the run): the AdamW moments only on request
[ -f "$T/m.bin.ckpt" ] || die "no checkpoint"
cs-export -o "$T/c.st" "$T/m.bin.ckpt" || die "cs-export a checkpoint"
cs-export --optim -o "$T/co.st" "$T/m.bin.ckpt" || die "cs-export --optim"
"$PY" -c 'import csio, sys
_, a = csio.read_safetensors(sys.argv[1]); _, b = csio.read_safetensors(sys.argv[2])
assert "adam.m" not in a and "adam.m" in b and b["adam.v"].shape == (sum(x.size for x in a.values()),)
' "$T/c.st" "$T/co.st" || die "moments"
ok "cs-export: every tensor with its name and shape, into numpy"

# A model file written before shapes were stored: shapes from its configuration.
"$PY" - "$T/m.bin" "$T/old.bin" <<'EOF' || die "writing an old model file"
import csio, struct, sys
meta, t = csio.read_model(sys.argv[1])
out = bytearray(b"CSMF" + struct.pack("<I", 1))
keep = {k: v for k, v in meta.items() if not k.startswith("shape.")}
out += struct.pack("<I", len(keep))
for k, v in keep.items():
    out += struct.pack("<H", len(k)) + k.encode() + struct.pack("<I", len(v)) + v.encode()
out += struct.pack("<I", len(t))
for name, a in t.items():
    out += struct.pack("<H", len(name)) + name.encode() + struct.pack("<Q", a.size) + a.tobytes()
out += struct.pack("<Q", csio._fnv1a(bytes(out)))
open(sys.argv[2], "wb").write(out)
EOF
cs-export -o "$T/old.st" "$T/old.bin" || die "cs-export an old model"
"$PY" -c 'import csio, sys
_, a = csio.read_safetensors(sys.argv[1]); _, b = csio.read_safetensors(sys.argv[2])
assert all(a[k].shape == b[k].shape for k in a)' "$T/old.st" "$T/m.safetensors" || die "old shapes"
test_must_fail cs-export -o "$T/x.st" "$T/raw.cseq"
stderr_has "cs-export: $T/raw.cseq"
[ -e "$T/x.st" ] && die "a failed export left its output"
test_must_fail_usage cs-export
ok "old model files, errors"
