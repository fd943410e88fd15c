#!/usr/bin/python3
"""bench_bert4rec_torch.py - training speed of a PyTorch BERT4Rec, the
reference for cs-train (scripts/bench-train.sh runs both).

The model is lib/model.h's, as scripts/torch_ref.py ports it (the same
forward, in float32 here, with BERT's dropouts on as in training): item +
position embedding, LayerNorm, dropout; L post-LN blocks (bidirectional
attention with BERT's additive -10000 mask on padding, attention-prob
dropout, GELU tanh feed-forward); at the masked positions only (gathered
before the output layer, as an efficient peer would) Dense + GELU +
LayerNorm, then logits over all V items through the tied item embedding
plus a bias. Pad (0) and mask (1) are never predicted: the output product
runs over the embedding rows 2..V-1 (a view, no copy), which is the same
softmax as setting their logits to -inf. Cross-entropy mean over the
masked positions; AdamW (torch.optim.AdamW, decay on matrices and
embeddings only), gradient clipping at 1.0, linear warmup and decay, as
cs-train does.

Data: the Cloze examples of cs-mask cloze, read through `cs-cat -J`
(one JSON object a line: "item" the ids with 1 at masked positions,
"target" the original ids there, 0 elsewhere), so the reference trains on
exactly the examples cs-train reads. Batches of --batch examples in a
shuffled order, padded with 0 to the longest sequence of the batch
(--pad longest, the default: the usual DataLoader + pad_sequence collate;
on Beauty almost every batch of 128 holds a window of 40+, so it is about
the same as --pad max, which pads to --max-len). --pad bucket sorts each
pool of 50 batches by length first (a common trick; fewer padded tokens,
batches no longer uniformly random) and is reported separately.

Speed: --warmup steps untimed, then --steps timed steps (forward, loss,
backward, clipping, AdamW step, zero_grad) over batches built up front as
index ranges into one padded tensor (collate costs nothing measurable).
Prints examples/s, the seconds an epoch of --epoch-examples examples
would take (default: the examples read), and GFLOP/s of the useful matrix
products (those on real tokens, see --stats).

Threads: OpenBLAS (Debian's torch calls cblas_sgemm of libblas.so.3, which
is OpenBLAS here) and OpenMP (torch's own kernels) both get --threads;
the environment is set before torch is imported. OMP_WAIT_POLICY=PASSIVE
unless --omp-active: OpenMP threads that spin after a parallel region
steal cores from OpenBLAS's threads; on 2 cores, 2 threads, passive ran
1.5-1.8x faster than the default, and as fast as 1 OpenMP thread with 2
OpenBLAS threads (--threads 1 --blas-threads 2).

--stats prints only the data's statistics and the FLOP count per example:
    per example: n tokens, m masked positions, sum over sequences of n^2;
    forward matrix products: L * (2 n C (3C + C + 2 FF) + 4 C n^2)
        + 2 m C C (head) + 2 m C V (output layer); backward twice that;
    FLOP/example = 3 * forward (6 m C V for the output layer).
Elementwise work (softmax over V, GELU, LayerNorm, dropout, Adam) is not
counted.

    scripts/bench_bert4rec_torch.py -v vocab.txt -j 2 train.cseq
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train", help="Cloze examples (cs-mask cloze output)")
    ap.add_argument("-v", "--vocab", help="vocabulary file (V from its item field)")
    ap.add_argument("-V", "--items", type=int, help="V, instead of --vocab")
    ap.add_argument("-j", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50, help="timed steps [50]")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first [5]")
    ap.add_argument("--repeats", type=int, default=1,
                    help="time --steps this many times, print each and the median [1]")
    ap.add_argument("--pad", choices=["longest", "max", "bucket"], default="longest")
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--attn-dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epoch-examples", type=int,
                    help="examples in an epoch, for s/epoch [those read]")
    ap.add_argument("--blas-threads", type=int,
                    help="OpenBLAS threads, if not --threads")
    ap.add_argument("--omp-active", action="store_true",
                    help="leave OMP_WAIT_POLICY unset (OpenMP threads spin)")
    ap.add_argument("--foreach", action="store_true",
                    help="AdamW(foreach=True) (multi-tensor update)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cs-cat", default=None, help="cs-cat program [./cs-cat]")
    ap.add_argument("--stats", action="store_true",
                    help="print data statistics and FLOP/example only")
    return ap.parse_args()


def read_V(path):
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 3 and p[0] == "field" and p[1] == "item":
                return int(p[2])
    sys.exit("%s: no 'field item' line" % path)


def read_examples(path, cs_cat, max_len):
    """Lists of (items, targets) from cs-cat -J, the last max_len kept."""
    out = subprocess.run([cs_cat, "-j", "-q", path], check=True,
                         stdout=subprocess.PIPE).stdout
    ex = []
    for line in out.splitlines():
        r = json.loads(line)
        it, tg = r["item"][-max_len:], r["target"][-max_len:]
        ex.append((it, tg))
    return ex


def flop_stats(ex, V, C, L, FF):
    n = len(ex)
    tok = sum(len(it) for it, _ in ex) / n
    sq = sum(len(it) ** 2 for it, _ in ex) / n
    m = sum(sum(1 for t in tg if t) for _, tg in ex) / n
    enc = L * (2 * tok * C * (3 * C + C + 2 * FF) + 4 * C * sq)
    head = 2 * m * C * C
    out = 2 * m * C * V
    return {"examples": n, "tokens": tok, "sum_n2": sq, "masked": m,
            "flop_output": 3 * out, "flop_encoder": 3 * (enc + head),
            "flop": 3 * (enc + head + out)}


def main():
    a = parse_args()
    if a.cs_cat is None:
        here = os.path.dirname(os.path.abspath(__file__))
        a.cs_cat = os.path.join(os.path.dirname(here), "cs-cat")
    V = a.items if a.items else read_V(a.vocab) if a.vocab else None
    if V is None:
        sys.exit("need --vocab or --items")
    C, L, NH, P = a.hidden, a.layers, a.heads, a.max_len
    FF, HS = 4 * C, C // NH
    ex = read_examples(a.train, a.cs_cat, P)
    st = flop_stats(ex, V, C, L, FF)
    if a.stats:
        print("examples %d  tokens/ex %.3f  masked/ex %.3f  sum n^2/ex %.1f  "
              "MFLOP/ex %.3f (output layer %.3f, encoder+head %.3f)"
              % (st["examples"], st["tokens"], st["masked"], st["sum_n2"],
                 st["flop"] / 1e6, st["flop_output"] / 1e6,
                 st["flop_encoder"] / 1e6))
        print("STATS examples=%d flop_per_example=%.6g masked_per_example=%.6g "
              "tokens_per_example=%.6g sumsq_per_example=%.6g"
              % (st["examples"], st["flop"], st["masked"], st["tokens"],
                 st["sum_n2"]))
        return

    # threads: set before torch (and OpenBLAS, OpenMP) start
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads or a.threads)
    os.environ["MKL_NUM_THREADS"] = str(a.threads)
    if not a.omp_active:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    torch.backends.mkldnn.enabled = True  # only convolutions use it; no effect here

    # the examples, padded once to P; a batch is rows of these
    n = len(ex)
    items = torch.zeros(n, P, dtype=torch.long)
    tgts = torch.zeros(n, P, dtype=torch.long)
    lens = torch.zeros(n, dtype=torch.long)
    for i, (it, tg) in enumerate(ex):
        items[i, :len(it)] = torch.tensor(it)
        tgts[i, :len(tg)] = torch.tensor(tg)
        lens[i] = len(it)
    if int(items.max()) >= V or int(tgts.max()) >= V:
        sys.exit("item ids beyond V = %d" % V)

    g = torch.Generator().manual_seed(a.seed)
    need = (a.warmup + a.steps * a.repeats) * a.batch

    def batch_order():
        order, have = [], 0
        while have < need:  # whole shuffled epochs until enough examples
            perm = torch.randperm(n, generator=g)
            if a.pad == "bucket":
                pool = 50 * a.batch
                for s in range(0, n, pool):
                    chunk = perm[s:s + pool]
                    chunk = chunk[torch.argsort(lens[chunk], stable=True)]
                    bs = [chunk[i:i + a.batch] for i in range(0, len(chunk), a.batch)]
                    order.extend(bs[j] for j in torch.randperm(len(bs), generator=g).tolist())
            else:
                order.extend(perm[i:i + a.batch] for i in range(0, n, a.batch))
            have += n
        return order

    batches = []
    for idx in batch_order():
        T = P if a.pad == "max" else int(lens[idx].max())
        tok = items[idx, :T].contiguous()
        tg = tgts[idx, :T]
        mb, mt = tg.nonzero(as_tuple=True)
        flat = (mb * T + mt).contiguous()
        valid = torch.arange(T)[None, :] < lens[idx][:, None]
        amask = ((~valid).float() * -10000.0)[:, None, None, :].contiguous()
        batches.append((tok, amask, flat, (tg[mb, mt] - 2).contiguous(), len(idx)))
        if len(batches) >= a.warmup + a.steps * a.repeats:
            break

    # parameters, lib/model.h's layout and initialisation
    def tn(*shape):
        t = torch.empty(*shape)
        torch.nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04)
        return torch.nn.Parameter(t)

    def const(v, *shape):
        return torch.nn.Parameter(torch.full(shape, float(v)))

    p = {
        "wte": tn(V, C), "wpe": tn(P, C), "embln_w": const(1, C), "embln_b": const(0, C),
        "qkv_w": tn(L, 3 * C, C), "qkv_b": const(0, L, 3 * C),
        "proj_w": tn(L, C, C), "proj_b": const(0, L, C),
        "ln1_w": const(1, L, C), "ln1_b": const(0, L, C),
        "fc_w": tn(L, FF, C), "fc_b": const(0, L, FF),
        "fc2_w": tn(L, C, FF), "fc2_b": const(0, L, C),
        "ln2_w": const(1, L, C), "ln2_b": const(0, L, C),
        "head_w": tn(C, C), "head_b": const(0, C),
        "headln_w": const(1, C), "headln_b": const(0, C),
        "out_b": const(0, V),
    }
    decay = {"wte", "wpe", "qkv_w", "proj_w", "fc_w", "fc2_w", "head_w"}
    hd, ad = a.dropout, a.attn_dropout
    scale = 1.0 / math.sqrt(HS)

    def ln(x, w, b):
        return F.layer_norm(x, (C,), w, b, eps=1e-12)

    def forward(tok, amask, flat, tgt):
        B, T = tok.shape
        x = F.embedding(tok, p["wte"]) + p["wpe"][:T]
        x = F.dropout(ln(x, p["embln_w"], p["embln_b"]), hd, True)
        for l in range(L):
            qkv = F.linear(x, p["qkv_w"][l], p["qkv_b"][l])          # (B, T, 3C)
            q, k, v = qkv.view(B, T, 3, NH, HS).permute(2, 0, 3, 1, 4)
            s = torch.matmul(q, k.transpose(-1, -2)).mul_(scale).add_(amask)
            w = F.dropout(s.softmax(-1), ad, True)
            y = torch.matmul(w, v).transpose(1, 2).reshape(B, T, C)
            y = F.linear(y, p["proj_w"][l], p["proj_b"][l])
            x = ln(x + F.dropout(y, hd, True), p["ln1_w"][l], p["ln1_b"][l])
            h = F.gelu(F.linear(x, p["fc_w"][l], p["fc_b"][l]), approximate="tanh")
            h = F.linear(h, p["fc2_w"][l], p["fc2_b"][l])
            x = ln(x + F.dropout(h, hd, True), p["ln2_w"][l], p["ln2_b"][l])
        hm = x.reshape(B * T, C).index_select(0, flat)                # (M, C)
        h = F.gelu(F.linear(hm, p["head_w"], p["head_b"]), approximate="tanh")
        h = ln(h, p["headln_w"], p["headln_b"])
        # items 2..V-1 only: pad and mask are out of the softmax
        logits = torch.addmm(p["out_b"][2:], h, p["wte"][2:].t())   # (M, V-2)
        return F.cross_entropy(logits, tgt)

    opt = torch.optim.AdamW(
        [{"params": [p[k] for k in p if k in decay], "weight_decay": 0.01},
         {"params": [p[k] for k in p if k not in decay], "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.999), eps=1e-8, foreach=a.foreach)
    total = max(1, (a.epoch_examples or n) // a.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: (t + 1) / 100 if t < 100 else max(0.0, (total - t) / (total - 100)))
    params = list(p.values())

    def step(bt):
        tok, amask, flat, tgt, _ = bt
        loss = forward(tok, amask, flat, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        return loss

    for bt in batches[:a.warmup]:
        step(bt)
    epoch_ex = a.epoch_examples or n
    rates, cpus = [], []
    pos = a.warmup
    for r in range(a.repeats):
        seen = 0
        c0 = time.process_time()
        t0 = time.perf_counter()
        for bt in batches[pos:pos + a.steps]:
            loss = step(bt)
            seen += bt[4]
        dt = time.perf_counter() - t0
        cpus.append(time.process_time() - c0)
        pos += a.steps
        rate = seen / dt
        rates.append(rate)
        if a.repeats > 1:
            print("repeat %d: %.1f examples/s, loss %.4f" % (r + 1, rate, float(loss)),
                  file=sys.stderr)
    rate = sorted(rates)[len(rates) // 2]
    cpu = sorted(cpus)[len(cpus) // 2]
    padded = sum(bt[0].numel() for bt in batches) / sum(bt[4] for bt in batches)
    core = "?"
    try:  # the OpenBLAS kernel torch's sgemm runs (libblas.so.3 is OpenBLAS here)
        import ctypes
        for lib in ("libblas.so.3", "libopenblas.so.0"):
            f = getattr(ctypes.CDLL(lib), "openblas_get_corename", None)
            if f:
                f.restype = ctypes.c_char_p
                core = f().decode()
                break
    except OSError:
        pass
    print("torch %s, OpenBLAS kernel %s, %d threads (OpenMP %d %s, OpenBLAS env %s), V=%d C=%d L=%d heads=%d "
          "batch %d, pad %s (%.1f token slots/example for %.2f real), %d+%d steps"
          % (torch.__version__, core, a.threads, torch.get_num_threads(),
             os.environ.get("OMP_WAIT_POLICY", "active"),
             os.environ.get("OPENBLAS_NUM_THREADS"), V, C, L, NH, a.batch, a.pad,
             padded, st["tokens"], a.warmup, a.steps))
    print("%.1f examples/s, %.1f s/epoch of %d examples, %.1f GFLOP/s useful "
          "(%.2f MFLOP/example), last loss %.4f"
          % (rate, epoch_ex / rate, epoch_ex, rate * st["flop"] / 1e9,
             st["flop"] / 1e6, float(loss)))
    print("process CPU %.3f s/step (%.0f%% of %d threads' wall time)"
          % (cpu / a.steps, 100 * cpu / (a.steps * a.batch / rate * a.threads), a.threads))
    print("RESULT examples_per_s=%.2f s_per_epoch=%.2f gflops=%.2f cpu_s=%.3f"
          % (rate, epoch_ex / rate, rate * st["flop"] / 1e9, cpu))


if __name__ == "__main__":
    main()
