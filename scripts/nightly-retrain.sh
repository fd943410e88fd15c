#!/bin/sh
# nightly-retrain.sh - retrain the recommendation model from the latest
# exports, for cron. One run at a time (a lock), a log per run, the new
# model published atomically, the previous one kept, a non-zero exit on any
# failure with the published model untouched. Silent on success (cron mails
# any output). Installed as cs-nightly-retrain by make install.
#
#   nightly-retrain.sh [options] DIR EXPORT...
#
#   -p PRESET   cs-ingest preset of the exports [kaggle]
#   -b BY       group by user or session [preset's default]
#   -e EPOCHS   [20]
#   -k N        runs kept under DIR/runs, the published ones included [3]
#   -l N        logs kept under DIR/logs [30]
#   -g GAIN     publish only if the new test NDCG@10 is at least the current
#               model's plus GAIN (negative: tolerate that much of a drop) [0]
#   -v          say what was done on stderr even on success [off]
#   -x ARGS     more cs-train options, e.g. "-x '--hidden 128'"
#
# Layout under DIR:
#   current -> runs/STAMP    the published model: model.bin, vocab.txt, metrics.tsv
#   previous -> runs/STAMP   the one before it
#   logs/STAMP.log           everything a run printed
#   .lock                    held while a run works
# Readers use DIR/current/model.bin with DIR/current/vocab.txt: both are
# switched in one rename of the 'current' link.
#
# A crontab line (at 02:15 every night):
#   15 2 * * * /usr/local/bin/cs-nightly-retrain /srv/cs /data/exports/latest.csv
# Exit status: 0 published, 1 failed (see the log), 2 usage, 3 trained but
# not published (worse than the current model by the -g guard; the run is
# kept under DIR/runs), 75 another run holds the lock.
set -eu
prog=nightly-retrain.sh
usage() { sed -n '/^#   nightly/,/^#   -x/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
preset=kaggle by="" epochs=20 keep=3 keep_logs=30 gain="" verbose=0 extra=""
while getopts p:b:e:k:l:g:vx:h o; do
	case $o in
	p) preset=$OPTARG ;;
	b) by="--by $OPTARG" ;;
	e) epochs=$OPTARG ;;
	k) keep=$OPTARG ;;
	l) keep_logs=$OPTARG ;;
	g) gain=$OPTARG ;;
	v) verbose=1 ;;
	x) extra=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
case $keep in '' | *[!0-9]* | 0 | 1) echo "$prog: -k needs a number of at least 2" >&2; exit 2 ;; esac
case $keep_logs in '' | *[!0-9]* | 0) echo "$prog: -l needs a number of at least 1" >&2; exit 2 ;; esac
if [ -n "$gain" ] && ! awk -v g="$gain" 'BEGIN { exit !(g ~ /^-?[0-9]*\.?[0-9]+$/) }'; then
	echo "$prog: -g needs a number, not '$gain'" >&2; exit 2
fi
say() { [ "$verbose" -eq 0 ] || echo "$prog: $*" >&2; }
# Absolute paths: the work happens in another directory.
mkdir -p "$1" || exit 1
dir=$(cd "$1" && pwd)
shift
for f; do
	case $f in /* | -) set -- "$@" "$f" ;; *) set -- "$@" "$PWD/$f" ;; esac
	shift
done
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
PATH=$here:$top:$PATH
command -v cs-train >/dev/null || { echo "$prog: build cs first (make in $top)" >&2; exit 1; }
command -v flock >/dev/null || { echo "$prog: needs flock (util-linux)" >&2; exit 1; }
mkdir -p "$dir/runs" "$dir/logs"

# One run at a time: the lock is held by file descriptor 9 until exit.
exec 9> "$dir/.lock"
if ! flock -n 9; then
	echo "$prog: another run holds $dir/.lock; not starting" >&2
	exit 75
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
run=$dir/runs/$stamp
logf=$dir/logs/$stamp.log
work=$dir/runs/.work-$stamp
rm -rf "$work"
mkdir -p "$work"
trap 'rc=$?; rm -rf "$work"; [ $rc -eq 0 ] || [ $rc -eq 3 ] || echo "$prog: FAILED (exit $rc), see $logf; $dir/current is unchanged" >&2' EXIT
say "run $stamp, log $logf"
(
	set -eu
	cd "$work"
	echo "== $(date -u) retrain from: $*"
	# shellcheck disable=SC2086
	cs-ingest -p "$preset" $by -o raw.cseq "$@"
	cs-vocab build -o vocab.txt raw.cseq
	cs-vocab encode -v vocab.txt -o enc.cseq raw.cseq
	cs-mask split -o s enc.cseq
	cs-mask cloze -o cloze.cseq s.train.cseq
	# shellcheck disable=SC2086
	cs-train -q -v vocab.txt --valid s.valid.cseq --epochs "$epochs" $extra --log train.log \
		-o model.bin cloze.cseq
	rm -f model.bin.ckpt
	cs-eval -q -m model.bin s.test.cseq > metrics.tsv
	cat metrics.tsv
	mkdir "$run"
	mv model.bin vocab.txt metrics.tsv train.log "$run/"
	echo "== $(date -u) done"
) > "$logf" 2>&1

# Keep the newest logs.
ls -1 "$dir/logs" | grep '\.log$' | sort -r | tail -n +"$((keep_logs + 1))" | while read -r old; do
	rm -f "${dir:?}/logs/$old"
done

# The guard: the new model must do as well as the current one (plus -g).
ndcg() { awk -F'\t' '$1 == "NDCG@10" { print $2 }' "$1" 2>/dev/null; }
if [ -n "$gain" ] && [ -s "$dir/current/metrics.tsv" ]; then
	new=$(ndcg "$run/metrics.tsv") old=$(ndcg "$dir/current/metrics.tsv")
	if [ -n "$new" ] && [ -n "$old" ] &&
		! awk -v n="$new" -v o="$old" -v g="$gain" 'BEGIN { exit !(n >= o + g) }'; then
		echo "$prog: not published: NDCG@10 $new < $old (current) + $gain; the run is in $run" | tee -a "$logf" >&2
		exit 3
	fi
fi

# Publish: previous <- current, current <- the new run, each by a rename.
if [ -L "$dir/current" ]; then
	ln -sfn "$(readlink "$dir/current")" "$dir/.previous.new"
	mv -T "$dir/.previous.new" "$dir/previous"
fi
ln -sfn "runs/$stamp" "$dir/.current.new"
mv -T "$dir/.current.new" "$dir/current"
echo "== published $run" >> "$logf"
say "published $run"

# Keep the newest runs (never the published ones).
cur=$(readlink "$dir/current") prev=$(readlink "$dir/previous" 2>/dev/null || true)
ls -1 "$dir/runs" | sort -r | tail -n +"$((keep + 1))" | while read -r old; do
	[ "runs/$old" = "$cur" ] || [ "runs/$old" = "$prev" ] || rm -rf "${dir:?}/runs/$old"
done
