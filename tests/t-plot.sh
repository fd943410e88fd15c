#!/bin/sh
# Plots: cs-stats --plot renders every plot of the Kaggle head, and
# --train-log the curves of cs-train's log (which has a row per epoch
# always, validation metrics when there are any, --log-every step rows),
# as real PNG and SVG images of the expected size.
. tests/lib.sh
command -v gnuplot >/dev/null || { echo "skip: gnuplot missing (make deps)"; exit 0; }

# images DIR NAME...: DIR/NAME.png and .svg are 960x600 images with content.
images() {
	dir=$1; shift
	python3 - "$dir" "$@" <<'EOF' || die "bad images in $1"
import struct, sys, zlib, xml.etree.ElementTree as ET
d = sys.argv[1]
for name in sys.argv[2:]:
    b = open("%s/%s.png" % (d, name), "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", name + ".png: not a PNG"
    w, h, depth, ctype = struct.unpack(">IIBB", b[16:26])
    assert (w, h) == (960, 600), "%s.png is %dx%d" % (name, w, h)
    # the chunks, to the end: the pixels decompress to the size of the image
    i, idat = 8, b""
    while i < len(b):
        n, = struct.unpack(">I", b[i:i + 4])
        kind = b[i + 4:i + 8]
        if kind == b"IDAT":
            idat += b[i + 8:i + 8 + n]
        i += 12 + n
    assert kind == b"IEND", name + ".png: no IEND"
    bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ctype] * depth // 8
    assert len(zlib.decompress(idat)) == h * (1 + w * bpp), name + ".png: wrong pixel data"
    assert len(b) > 8000, name + ".png: %d bytes, nearly empty" % len(b)
    root = ET.parse("%s/%s.svg" % (d, name)).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg", name + ".svg: not SVG"
    assert (root.get("width"), root.get("height")) == ("960", "600"), name + ".svg: size"
    paths = sum(1 for e in root.iter() if e.tag.endswith("path"))
    texts = "".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))
    assert paths > 20 and len(texts) > 40, name + ".svg: nearly empty"
EOF
}

K=kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
if [ -f "$DATA/$K" ]; then
	cs-ingest -q -p kaggle --by session "$DATA/$K" -o "$T/k.cseq" 2>/dev/null || die "ingest"
	cs-stats -p "$T/plots" "$T/k.cseq" >"$T/k.tsv" || die "cs-stats --plot"
	images "$T/plots" length popularity day hour funnel
	for f in length popularity day hour funnel; do
		[ -s "$T/plots/$f.tsv" ] || die "no data file $f.tsv"
	done
	grep -q '^purchase	214	200	193	' "$T/plots/funnel.tsv" || die "funnel data"
	grep -q "Funnel of k.cseq" "$T/plots/funnel.svg" || die "funnel title"
	ok "every plot of the Kaggle head is a 960x600 PNG and SVG"
	# each plot's data against cs-stats' own rows
	stat() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s && $2 == k { print $3; exit }' "$T/k.tsv"; }
	ev=$(stat stream events) recs=$(stat stream records)
	expect_eq "$(awk -F'\t' 'NR > 1 { n += $2; e += $1 * $2 } END { print n, e }' "$T/plots/length.tsv")" \
		"$recs $ev" "length.tsv: sequences and events"
	expect_eq "$(awk -F'\t' 'NR == 2 { print $2 }' "$T/plots/length.tsv")" "$(stat length single_event)" \
		"length.tsv: single-event sequences"
	ok "length plot: $recs sequences, $ev events"
	top=$(awk -F'\t' '$1 == "top_item" { print $3; exit }' "$T/k.tsv")
	expect_eq "$(awk -F'\t' 'NR == 2 { print $1, $2 }' "$T/plots/popularity.tsv")" "1 $top" "popularity.tsv: the top item"
	awk -F'\t' 'NR > 2 && ($1 <= r || $2 > e) { exit 1 } NR > 1 { r = $1; e = $2 }' "$T/plots/popularity.tsv" ||
		die "popularity.tsv: ranks not rising or counts rising"
	expect_eq "$(awk -F'\t' 'END { print $1 }' "$T/plots/popularity.tsv")" "$(stat unique item)" \
		"popularity.tsv: the last rank is the number of items"
	ok "popularity plot: rank 1 has $top events, down to rank $(stat unique item)"
	expect_eq "$(awk -F'\t' 'NR > 1 { n += $2 } END { print NR - 1, n }' "$T/plots/hour.tsv")" "24 $ev" \
		"hour.tsv: 24 hours, every event"
	expect_eq "$(awk -F'\t' 'NR > 1 { print $1, $2 }' "$T/plots/day.tsv")" "2019-10-01 $ev" "day.tsv"
	ok "day and hour plots: every event, in its day and hour"
else
	echo "skip: $DATA/$K missing"
fi

# A stream without actions or time: the plots it has data for, no others.
printf 'user:seq:string\titem:event:string\nu1\ta\nu1\tb\nu2\ta\n' | cs-cat -r -o "$T/p.cseq" ||
	die "cs-cat -r"
cs-stats -p "$T/pp" "$T/p.cseq" >/dev/null || die "cs-stats --plot on pairs"
[ -f "$T/pp/length.png" ] && [ -f "$T/pp/popularity.svg" ] || die "pairs: no length or popularity plot"
[ -e "$T/pp/funnel.png" ] || [ -e "$T/pp/day.png" ] && die "pairs: plots of missing fields"
ok "only the plots a stream has data for"

# Training logs: 120 items walked in order, a few seconds of training.
awk 'BEGIN {
	srand(7); print "user:seq:string\titem:event:string\ttime:event:int64"
	for (u = 0; u < 300; u++) {
		s = int(rand() * 120); n = 6 + int(rand() * 10)
		for (j = 0; j < n; j++) printf "u%d\tp%d\t%d\n", u, (s + j) % 120, 1000 * u + j
	}
}' | cs-cat -r -o "$T/raw.cseq" || die "events"
cs-vocab build -q -o "$T/v.txt" "$T/raw.cseq" || die "vocab"
cs-vocab encode -q -v "$T/v.txt" "$T/raw.cseq" | cs-mask split -q -o "$T/s" || die "split"
cs-mask cloze -q --dupe 2 --max-len 16 -o "$T/c.cseq" "$T/s.train.cseq" || die "cloze"
OPTS="-q -v $T/v.txt --hidden 16 --layers 1 --heads 2 --max-len 16 --batch 32 --lr 3e-3
	--warmup 10 -j 1 --epochs 4"
cs-train $OPTS --valid "$T/s.valid.cseq" --eval-every 2 --log "$T/log.tsv" --log-every 5 \
	-o "$T/m.bin" "$T/c.cseq" || die "cs-train --log-every"
head -1 "$T/log.tsv" | grep -q '	best	lr$' || die "log header"
# a row per epoch, validation on epochs 2 and 4 only, a learning rate on every row
awk -F'\t' 'NR > 1 && $1 !~ /\./ { e++; v = v ($6 == "" ? "-" : "v") } NR > 1 && $10 == "" { bad++ }
	NR > 1 && $1 ~ /\./ { s++; if ($6 != "" || $9 != "") bad++ }
	END { if (e != 4 || v != "-v-v" || s < 8 || bad) { print e, v, s, bad; exit 1 } }' "$T/log.tsv" ||
	{ cat "$T/log.tsv" >&2; die "log rows"; }
awk -F'\t' 'NR > 1 && $1 ~ /\./ && $2 % 5 { exit 1 }' "$T/log.tsv" || die "step rows not every 5 steps"
ok "the log has a row per epoch, validation when validated, step rows on request"

cs-train $OPTS --log "$T/nv.tsv" -o "$T/nv.bin" "$T/c.cseq" || die "cs-train without --valid"
expect_eq "$(awk -F'\t' 'NR > 1 && $6 == "" && $10 > 0 { n++ } END { print n }' "$T/nv.tsv")" 4 \
	"epoch rows without validation"
cs-train $OPTS --log "$T/nv.json" --log-json -o "$T/nv.bin" "$T/c.cseq" || die "--log-json"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4 and all("lr" in r and "valid_ndcg10" not in r for r in rows), rows
' "$T/nv.json" || die "JSON log"
test_must_fail_usage cs-train $OPTS --log-every 5 -o "$T/x.bin" "$T/c.cseq"
ok "without validation: a row per epoch, loss and learning rate"

cs-stats -p "$T/tp" -L "$T/log.tsv" </dev/null || die "cs-stats --train-log"
images "$T/tp" train
cs-stats -p "$T/tn" -L "$T/nv.tsv" </dev/null || die "cs-stats --train-log without validation"
images "$T/tn" train
grep -q "no validation in this run" "$T/tn/train.svg" || die "no note of the missing validation"
test_must_fail cs-stats -p "$T/tj" -L "$T/nv.json"
stderr_has "not the TSV log of cs-train"
ok "training curves, with and without validation"
