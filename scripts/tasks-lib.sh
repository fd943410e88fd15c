# tasks-lib.sh - shared by the task pipelines (kaggle-tasks.sh,
# retail-returns.sh, diginetica-intent.sh): builds cs, puts it on PATH and
# prints result rows. Sourced, not run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
(cd "$top" && make -s deps && make -s all) >&2
command -v /usr/bin/python3 >/dev/null 2>&1 || {
	echo "$(basename "$0"): installing python3" >&2
	apt-get install -y -q python3 >&2
}
PATH=$top:$PATH
EPOCHS=${EPOCHS:-20}
SEED=${SEED:-1}
threads=${THREADS:+-j $THREADS}
log() { echo "== $*" >&2; }

# row TASK MODEL METRICS.TSV: one line of the results table from cs-eval's
# classification output.
row() {
	awk -F'\t' -v task="$1" -v model="$2" '
		{ v[$1] = $2 }
		END { printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", task, model, v["AUC"], v["PR-AUC"],
		      v["logloss"], v["examples"], v["positives"] }' "$3"
}
header() { printf 'task\tmodel\tAUC\tPR-AUC\tlogloss\texamples\tpositives\n'; }

# baselines TASK KIND TRAIN TEST: the positive rate and the count model.
baselines() {
	for b in rate counts; do
		/usr/bin/python3 "$top/scripts/baseline.py" --task "$2" --model "$b" "$3" "$4" |
			cs-eval --scores > "base-$b.tsv"
		row "$1" "baseline: $([ $b = rate ] && echo positive rate || echo logistic on counts)" \
			"base-$b.tsv"
	done
}
