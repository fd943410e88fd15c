#!/bin/sh
# compare-outputs.sh - run every program over the same inputs with two
# builds and compare all their outputs byte for byte.
#
#   sh scripts/compare-outputs.sh [-k] [--old DIR] [--new DIR] [--data DIR] [BASE]
#
# The old build is commit BASE (default: $BASE, else main), exported with
# git archive and built apart (make all); --old DIR uses the programs in
# DIR instead. The new build is this working tree (make all here), or the
# programs in --new DIR. Both run the same scenario: cs-ingest over every
# preset, option set and bad input (tests/bad), a synthetic Kaggle CSV
# large enough to spill sorted runs, and the heads of the real data sets
# in --data (default ../shared/data; skipped when absent); then cs-vocab,
# cs-cat, cs-mask, a tiny one-epoch cs-train (fixed seeds, -j 1),
# cs-eval and cs-recommend on Beauty, Kaggle sessions and Online Retail.
# Every step's stdout, stderr, exit status and files are kept and compared
# with cmp; what differs is printed (text diffs, streams decoded by
# cs-cat). Timings are the one thing masked before comparing: cs-ingest's
# "in 0.53 s (15 MB/s)" on stderr and the examples_per_s and elapsed_s
# columns of cs-train's --log. Model files (*.bin, *.ckpt) of two
# different format versions (cs-formats(5): version 2 changed only the
# checksum) are compared without their version field (bytes 5-8) and
# checksum (the last 8 bytes), and counted apart; everything else must
# match byte for byte. Exit 0 when everything is identical, 1
# when something differs or a build fails, 2 on a usage error. -k keeps
# the work directory.
# Environment: TMPDIR, MAKEFLAGS (e.g. -j2), CC.
set -u

usage() {
	echo "usage: sh scripts/compare-outputs.sh [-k] [--old DIR] [--new DIR] [--data DIR] [BASE]" >&2
	exit 2
}
KEEP=0 OLD= NEW= DATA= BASE=${BASE:-main}
while [ $# -gt 0 ]; do
	case $1 in
	-k|--keep) KEEP=1; shift ;;
	--old) [ $# -ge 2 ] || usage; OLD=$2; shift 2 ;;
	--new) [ $# -ge 2 ] || usage; NEW=$2; shift 2 ;;
	--data) [ $# -ge 2 ] || usage; DATA=$2; shift 2 ;;
	-h|--help) sed -n '2,28s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) usage ;;
	*) BASE=$1; shift ;;
	esac
done
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
DATA=${DATA:-$ROOT/../shared/data}
abs() { (cd "$1" && pwd); }
W=$(mktemp -d "${TMPDIR:-/tmp}/cs-compare.XXXXXX") || exit 1
cleanup() { [ $KEEP = 1 ] && echo "compare: work directory $W" >&2 || rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
export MAKEFLAGS=${MAKEFLAGS:--j2}

# ---- the two builds
if [ -n "$OLD" ]; then
	OLD=$(abs "$OLD") || exit 1
	oldname=$OLD
else
	rev=$(git rev-parse --verify -q "$BASE^{commit}") || { echo "compare: no commit '$BASE'" >&2; exit 2; }
	oldname="$BASE ($(git rev-parse --short "$rev"))"
	mkdir "$W/old-src" && git archive "$rev" | tar -x -C "$W/old-src" || exit 1
	echo "compare: building $oldname" >&2
	make -C "$W/old-src" all > "$W/old-build.log" 2>&1 ||
		{ tail -20 "$W/old-build.log" >&2; echo "compare: the build of $BASE failed" >&2; exit 1; }
	OLD=$W/old-src
fi
if [ -n "$NEW" ]; then
	NEW=$(abs "$NEW") || exit 1
	newname=$NEW
else
	echo "compare: building the working tree" >&2
	make all > "$W/new-build.log" 2>&1 ||
		{ tail -20 "$W/new-build.log" >&2; echo "compare: the build of the working tree failed" >&2; exit 1; }
	NEW=$ROOT
	newname="the working tree"
fi
for p in cs-ingest cs-vocab cs-cat cs-mask cs-train cs-eval cs-recommend; do
	for d in "$OLD" "$NEW"; do
		[ -x "$d/$p" ] || { echo "compare: no $d/$p" >&2; exit 1; }
	done
done

# ---- the inputs, made once and shared by both runs
IN=$W/in
mkdir "$IN"
${CC:-cc} -O2 -o "$W/gen-kaggle" scripts/gen-kaggle.c -lm || exit 1
"$W/gen-kaggle" -n 60000 -s 3 -o "$IN/synth.csv" || exit 1
cp tests/bad/*.csv "$IN/" 2>/dev/null
# Histories with planted structure (tests/t-bert4rec.sh's), as text.
awk 'BEGIN {
	srand(7); print "user:seq:string\titem:event:string\ttime:event:int64"
	for (u = 0; u < 300; u++) {
		s = int(rand() * 80); n = 4 + int(rand() * 10)
		for (j = 0; j < n; j++) printf "u%d\tp%d\t%d\n", u, (s + j) % 80, 1000 * u + j
	}
}' > "$IN/events.txt"
awk 'BEGIN { srand(3); for (i = 0; i < 500; i++) printf "%.4f\t%d\n", rand(), rand() < 0.3 }' > "$IN/scores.txt"
HAVE_DATA=0
if [ -d "$DATA/amazon-beauty" ] && [ -d "$DATA/kaggle-ecommerce-multicategory" ] &&
   [ -d "$DATA/online-retail" ] && [ -d "$DATA/diginetica" ]; then
	HAVE_DATA=1
	head -n 60000 "$DATA/amazon-beauty/beauty_bert4rec.txt" > "$IN/beauty.txt"
	head -n 3000 "$DATA/amazon-beauty/beauty_5core_seq.txt" > "$IN/beauty5.txt"
	cp "$DATA/amazon-beauty/ratings_Beauty_head30k.csv" "$IN/ratings.csv"
	cp "$DATA/kaggle-ecommerce-multicategory/2019-Oct_head17k.csv" "$IN/kaggle.csv"
	cp "$DATA/online-retail/OnlineRetail_head10k.csv" "$IN/retail.csv"
	cp "$DATA/online-retail/online_retail_random20k.csv" "$IN/retail20k.csv"
	cp "$DATA/diginetica/sample_train-item-views.csv" "$IN/views.csv"
	cp "$DATA/diginetica/train-purchases.csv" "$IN/purchases.csv"
else
	echo "compare: no data sets in $DATA: the synthetic and test inputs only" >&2
fi

# ---- the scenario: run BIN OUT
# step NAME CMD...: run CMD in OUT with BIN first on PATH; keep NAME.out,
# NAME.err and NAME.rc. Files the commands write land in OUT too.
step() {
	name=$1; shift
	"$@" > "$name.out" 2> "$name.err"
	echo $? > "$name.rc"
}
scenario() {
	PATH="$1:$PATH"
	cd "$2" || exit 1
	# cs-ingest: synthetic Kaggle, in memory and spilled, by session and user
	step syn-session cs-ingest -p kaggle --by session -j 1 -o syn-session.cseq "$IN/synth.csv"
	step syn-session-j2 cs-ingest -p kaggle --by session -j 2 -o syn-session-j2.cseq "$IN/synth.csv"
	step syn-spill cs-ingest -p kaggle --by session --mem 256k -j 2 -o syn-spill.cseq "$IN/synth.csv"
	step syn-spill-many cs-ingest -p kaggle --mem 16k -j 1 -o syn-spill-many.cseq "$IN/synth.csv"
	step syn-user cs-ingest -p kaggle -j 1 --gap 30m --collapse --min-len 2 -o syn-user.cseq "$IN/synth.csv"
	step syn-stdin sh -c "cs-ingest -p kaggle -j 1 --by session -o - < '$IN/synth.csv' > syn-stdin.cseq"
	step syn-map cs-ingest -j 1 -u user_id -i product_id -a event_type -t event_time -T auto \
		-k price:float32 -k cat=category_id:int64 -k 6 -o syn-map.cseq "$IN/synth.csv"
	step syn-nomap cs-ingest -j 1 --no-header -u 8 -i 3 -t 1 -T '%Y-%m-%d %H:%M:%S UTC' \
		-o syn-nomap.cseq "$IN/synth.csv"
	step syn-tab sh -c "tr , '\t' < '$IN/synth.csv' | cs-ingest -j 1 -s tab -u user_id -i product_id -A view -o syn-tab.cseq"
	# every bad input, as kaggle and with --strict
	for f in "$IN"/*.csv; do
		b=$(basename "$f" .csv)
		case $b in synth|kaggle|ratings|retail|retail20k|views|purchases) continue ;; esac
		step "bad-$b" cs-ingest -p kaggle -j 1 --max-report 50 -o "bad-$b.cseq" "$f"
		step "bad-$b-strict" cs-ingest -p kaggle -j 1 --strict -o "bad-$b-strict.cseq" "$f"
		step "bad-$b-keep" cs-ingest -j 1 -u 1 -i 2 -k n=3:int64 -k x=3:float32 \
			-o "bad-$b-keep.cseq" "$f"
	done
	step usage-preset cs-ingest -p nosuch "$IN/synth.csv"
	step usage-col cs-ingest -u nosuch -i product_id "$IN/synth.csv"
	step usage-time cs-ingest -T bogus -u user_id -i product_id "$IN/synth.csv"
	# the text pipeline: cat, vocab, mask, a tiny model, eval, recommend
	step ev-cat cs-cat -r -o ev.cseq "$IN/events.txt"
	pipeline ev ev.cseq ""
	step scores cs-eval --scores --json "$IN/scores.txt"
	if [ $HAVE_DATA = 1 ]; then
		step beauty cs-ingest -p pairs -j 1 -o beauty.cseq "$IN/beauty.txt"
		step beauty-j2 cs-ingest -p pairs -j 2 --mem 64k -o beauty-j2.cseq "$IN/beauty.txt"
		step beauty5 cs-ingest -p seqlines -j 1 -o beauty5.cseq "$IN/beauty5.txt"
		step ratings cs-ingest -p amazon -j 1 -o ratings.cseq "$IN/ratings.csv"
		step kaggle cs-ingest -p kaggle --by session -j 1 -o kaggle.cseq "$IN/kaggle.csv"
		step kaggle-user cs-ingest -p kaggle -j 2 --gap 600 --collapse -o kaggle-user.cseq "$IN/kaggle.csv"
		step kaggle-strict cs-ingest -p kaggle --strict -o kaggle-strict.cseq "$IN/kaggle.csv"
		step retail cs-ingest -p retail -j 1 -o retail.cseq "$IN/retail.csv"
		step retail20k cs-ingest -p retail -j 2 --mem 32k -o retail20k.cseq "$IN/retail20k.csv"
		step retail-pattern cs-ingest -j 1 -u CustomerID -i StockCode -t InvoiceDate \
			-T '%m/%d/%Y %H:%M' --skip-missing -o retail-pattern.cseq "$IN/retail.csv"
		step digi cs-ingest -p diginetica -j 1 --purchases "$IN/purchases.csv" -o digi.cseq "$IN/views.csv"
		step digi-spill cs-ingest -p diginetica -j 2 --mem 16k --purchases "$IN/purchases.csv" \
			-o digi-spill.cseq "$IN/views.csv"
		pipeline beauty beauty.cseq ""
		pipeline kaggle kaggle.cseq action
		step retail-vocab cs-vocab build -q -o retail.vocab retail.cseq
		step retail-enc cs-vocab encode -q -v retail.vocab -o retail.enc.cseq retail.cseq
		step retail-split cs-mask split -q --random 0.2,0.2 -o retail.r retail.enc.cseq
		step retail-returns cs-mask returns -q --vocab retail.vocab -o retail.ret.cseq retail.r.train.cseq
		step retail-returns-t cs-mask returns -q --vocab retail.vocab -o retail.ret.t.cseq retail.r.test.cseq
		step retail-train cs-train -q -v retail.vocab --head event --hidden 16 --layers 1 --heads 1 \
			--max-len 20 --epochs 1 --batch 16 -j 1 -o retail.event.bin retail.ret.cseq
		step retail-eval cs-eval -q -j 1 -m retail.event.bin retail.ret.t.cseq
		step retail-rec cs-recommend -q -j 1 -m retail.event.bin -v retail.vocab retail.ret.t.cseq
	fi
}

# pipeline NAME STREAM INPUT: vocabulary, splits, Cloze examples, a
# one-epoch model (with INPUT as an extra input when given), metrics and
# recommendations; for session data a session head on the Cloze model.
pipeline() {
	n=$1 s=$2 inp=$3
	step "$n-info" cs-cat --info "$s"
	step "$n-text" cs-cat -m "$s"
	step "$n-json" cs-cat -j "$s"
	if [ -n "$inp" ]; then
		step "$n-vocab" cs-vocab build -q -F "item,$inp" -o "$n.vocab" "$s"
	else
		step "$n-vocab" cs-vocab build -q -o "$n.vocab" "$s"
	fi
	step "$n-vocab-k" cs-vocab build -q -k 3 -c 2 -o "$n.k.vocab" "$s"
	step "$n-vocab-info" cs-vocab info "$n.vocab"
	step "$n-enc" cs-vocab encode -q -v "$n.vocab" -o "$n.enc.cseq" "$s"
	step "$n-enc-k" cs-vocab encode -q -d -l 3 -v "$n.k.vocab" -o "$n.enc.k.cseq" "$s"
	step "$n-dec" cs-vocab decode -q -v "$n.vocab" -o "$n.dec.cseq" "$n.enc.cseq"
	step "$n-split" cs-mask split -q -o "$n.s" "$n.enc.cseq"
	step "$n-split-tv" cs-mask split -q --train-valid -o "$n.tv" "$n.enc.cseq"
	step "$n-split-r" cs-mask split -q --random 0.1,0.1 --seed 5 -o "$n.r" "$n.enc.cseq"
	step "$n-split-t" cs-mask split -q --time-cut 1569890000 --whole -o "$n.t" "$n.enc.cseq"
	if [ -n "$inp" ]; then
		step "$n-cloze" cs-mask cloze -q --dupe 2 --max-len 20 --mask-field "$inp" --seed 3 \
			-o "$n.cloze.cseq" "$n.s.train.cseq"
		in_opt="--inputs $inp"
	else
		step "$n-cloze" cs-mask cloze -q --dupe 2 --max-len 20 --seed 3 -o "$n.cloze.cseq" "$n.s.train.cseq"
		in_opt=
	fi
	# shellcheck disable=SC2086
	step "$n-train" cs-train -q -v "$n.vocab" $in_opt --hidden 16 --layers 1 --heads 2 --max-len 20 \
		--epochs 1 --batch 32 --seed 2 -j 1 --valid "$n.s.valid.cseq" --log "$n.log.tsv" \
		-o "$n.bin" "$n.cloze.cseq"
	step "$n-eval" cs-eval -q -j 1 -m "$n.bin" -k 1,5,10 "$n.s.test.cseq"
	step "$n-eval-json" cs-eval -q -j 1 -m "$n.bin" --json --exclude-seen --sampler uniform "$n.s.test.cseq"
	step "$n-rec" cs-recommend -q -j 1 -m "$n.bin" -v "$n.vocab" -k 5 -o "$n.rec.txt" "$n.s.test.cseq"
	step "$n-rec-x" cs-recommend -q -j 1 -m "$n.bin" -v "$n.vocab" -k 3 -x "$n.s.test.cseq"
	step "$n-rec-text" sh -c "cs-cat -H '$s' | awk -F'\t' 'NR < 200 { h[\$1] = h[\$1] \" \" \$2 } END { for (k in h) print k \"\t\" h[k] }' | sort |
		cs-recommend -q -j 1 -m '$n.bin' -v '$n.vocab' --text -k 5"
	if [ -n "$inp" ]; then
		step "$n-sess" cs-mask session -q --vocab "$n.vocab" -o "$n.sess.cseq" "$n.r.train.cseq"
		step "$n-sess-t" cs-mask session -q --vocab "$n.vocab" --first 5 -o "$n.sess.t.cseq" "$n.r.test.cseq"
		step "$n-head" cs-train -q -v "$n.vocab" --head session --init "$n.bin" --freeze 1 \
			--epochs 1 --batch 16 -j 1 -o "$n.sess.bin" "$n.sess.cseq"
		step "$n-head-eval" cs-eval -q -j 1 -m "$n.sess.bin" "$n.sess.t.cseq"
		step "$n-head-rec" cs-recommend -q -j 1 -m "$n.sess.bin" -v "$n.vocab" "$n.sess.t.cseq"
	fi
}

mkdir "$W/old" "$W/new"
echo "compare: running $oldname" >&2
t0=$(date +%s)
(scenario "$OLD" "$W/old")
echo "compare: running $newname" >&2
(scenario "$NEW" "$W/new")
echo "compare: ran in $(($(date +%s) - t0)) s" >&2

# ---- the comparison, timings masked
for d in "$W/old" "$W/new"; do
	for f in "$d"/*.err; do
		sed -E 's/ in [0-9.]+ s \([0-9.]+ MB\/s\)/ in <time>/' "$f" > "$f.tmp" && mv "$f.tmp" "$f"
	done
	for f in "$d"/*.log.tsv; do
		[ -f "$f" ] || continue
		awk -F'\t' -v OFS='\t' 'NR > 1 { $4 = "-"; $5 = "-" } 1' "$f" > "$f.tmp" && mv "$f.tmp" "$f"
	done
done
(cd "$W/old" && find . -type f) > "$W/list"
(cd "$W/new" && find . -type f) >> "$W/list"
sort -u "$W/list" -o "$W/list"
ndiff=0 nsame=0 nver=0
# u32 at byte offset OFF of FILE
u32at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
# model files A and B: different versions, and identical once the version
# and the checksum are left out
model_versions_only() {
	case $1 in *.bin|*.ckpt) ;; *) return 1 ;; esac
	[ "$(head -c 4 "$1")" = CSMF ] && [ "$(head -c 4 "$2")" = CSMF ] || return 1
	va=$(u32at "$1" 4) vb=$(u32at "$2" 4)
	[ "$va" != "$vb" ] || return 1
	na=$(wc -c < "$1") nb=$(wc -c < "$2")
	[ "$na" -eq "$nb" ] && [ "$na" -ge 24 ] || return 1
	cmp -s -n 4 "$1" "$2" || return 1
	cmp -s -i 8 -n $((na - 16)) "$1" "$2"
}
while read -r f; do
	f=${f#./}
	a=$W/old/$f b=$W/new/$f
	if [ ! -f "$a" ] || [ ! -f "$b" ]; then
		echo "only in $([ -f "$a" ] && echo "$oldname" || echo "$newname"): $f"
		ndiff=$((ndiff + 1))
		continue
	fi
	if cmp -s "$a" "$b"; then
		nsame=$((nsame + 1))
		continue
	fi
	if model_versions_only "$W/old/$f" "$W/new/$f"; then
		nver=$((nver + 1))
		continue
	fi
	ndiff=$((ndiff + 1))
	echo "differs: $f ($(cmp "$a" "$b" 2>&1 | sed 's/.*differ: //'))"
	case $f in
	*.cseq) "$NEW/cs-cat" -m "$a" > "$W/a.txt" 2>&1; "$NEW/cs-cat" -m "$b" > "$W/b.txt" 2>&1
		diff "$W/a.txt" "$W/b.txt" | head -10 | sed 's/^/    /' ;;
	*.bin) ;;
	*) diff "$a" "$b" | head -10 | sed 's/^/    /' ;;
	esac
done < "$W/list"
[ $nver -eq 0 ] || echo "compare: $nver model files differ only in their format version and checksum"
echo "compare: $nsame files identical, $ndiff differ ($oldname against $newname)"
[ $ndiff -eq 0 ]
