#!/usr/bin/python3
"""baseline.py - simple baselines for the session and event heads.

    scripts/baseline.py --task session|event --model rate|counts TRAIN TEST

TRAIN and TEST are streams from cs-mask session (sequence field "label") or
cs-mask returns (event field "label": 1, 0, -1 not scored), raw or encoded.
Prints 'probability<TAB>label' for every label of TEST, in stream order, for
cs-eval --scores, so the baselines and the models are measured by one
implementation of the metrics.

  rate    every example gets the positive rate of TRAIN;
  counts  logistic regression (L2 1e-3, Newton's method) on the counts of
          each event type (field "action") in the session, for events those
          before the event, plus log(1 + length) and, for events, log(1 + x)
          of the event's own quantity and price where the stream has them.
Needs only the Python standard library and cs-cat on PATH.
"""
import argparse
import json
import math
import subprocess
import sys


def records(path):
    p = subprocess.Popen(["cs-cat", "-j", path], stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        yield json.loads(line)
    if p.wait() != 0:
        sys.exit("baseline.py: cs-cat failed on %s" % path)


def examples(path, task):
    """(features dict, label) per label of the stream."""
    for r in records(path):
        acts = [str(a) for a in r.get("action", [])]
        if task == "session":
            f = {"a=" + a: 0.0 for a in acts}
            for a in acts:
                f["a=" + a] += 1
            f["loglen"] = math.log1p(len(acts))
            yield f, int(r["label"])
            continue
        counts = {}
        for j, y in enumerate(r["label"]):
            if y >= 0:
                f = {"a=" + a: float(c) for a, c in counts.items()}
                f["loglen"] = math.log1p(j)
                for k in ("quantity", "price"):
                    if k in r:
                        f[k] = math.log1p(max(float(r[k][j]), 0.0))
                yield f, int(y)
            a = acts[j] if j < len(acts) else ""
            counts[a] = counts.get(a, 0) + 1


def solve(a, b):
    """Solve a x = b (a symmetric positive definite) by Gaussian elimination."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        piv = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[piv] = m[piv], m[c]
        for r in range(c + 1, n):
            k = m[r][c] / m[c][c]
            for j in range(c, n + 1):
                m[r][j] -= k * m[c][j]
    x = [0.0] * n
    for c in reversed(range(n)):
        x[c] = (m[c][n] - sum(m[c][j] * x[j] for j in range(c + 1, n))) / m[c][c]
    return x


def sigmoid(z):
    return 1 / (1 + math.exp(-z)) if z > -30 else 0.0


def fit(xs, ys, lam=1e-3, iters=12):
    d = len(xs[0])
    w = [0.0] * d
    for _ in range(iters):
        g = [lam * wi for wi in w]
        h = [[lam if i == j else 0.0 for j in range(d)] for i in range(d)]
        for x, y in zip(xs, ys):
            p = sigmoid(sum(wi * xi for wi, xi in zip(w, x)))
            r, s = p - y, p * (1 - p)
            for i in range(d):
                if x[i]:
                    g[i] += r * x[i]
                    si = s * x[i]
                    hi = h[i]
                    for j in range(d):
                        hi[j] += si * x[j]
        step = solve(h, g)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=["session", "event"], required=True)
    ap.add_argument("--model", choices=["rate", "counts"], default="counts")
    ap.add_argument("train")
    ap.add_argument("test")
    o = ap.parse_args()
    train = list(examples(o.train, o.task))
    test = list(examples(o.test, o.task))
    if not train or not test:
        sys.exit("baseline.py: no labels in %s" % (o.train if not train else o.test))
    out = sys.stdout
    if o.model == "rate":
        rate = sum(y for _, y in train) / len(train)
        for _, y in test:
            out.write("%.6g\t%d\n" % (rate, y))
        return
    names = sorted({k for f, _ in train for k in f})
    cols = {k: i for i, k in enumerate(names)}
    # standardise on the training data; the last column is the intercept
    mean = [0.0] * len(names)
    sq = [0.0] * len(names)
    for f, _ in train:
        for k, v in f.items():
            mean[cols[k]] += v
            sq[cols[k]] += v * v
    n = len(train)
    mean = [m / n for m in mean]
    sd = [math.sqrt(max(s / n - m * m, 1e-12)) for s, m in zip(sq, mean)]

    def vec(f):
        x = [(0.0 - m) / s for m, s in zip(mean, sd)]
        for k, v in f.items():
            i = cols.get(k)
            if i is not None:
                x[i] = (v - mean[i]) / sd[i]
        return x + [1.0]

    w = fit([vec(f) for f, _ in train], [y for _, y in train])
    for f, y in test:
        p = sigmoid(sum(wi * xi for wi, xi in zip(w, vec(f))))
        out.write("%.6g\t%d\n" % (p, y))


if __name__ == "__main__":
    main()
