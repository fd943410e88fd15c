#!/usr/bin/python3
"""torch_ref_sasrec.py - reference states of the causal model and the sampled
losses for tests/check_model.c.

The cloze-head model of lib/model.h (scripts/torch_ref.py's encoder, float64,
padded batches) with causal attention and the losses of lib/sampled.h. For
each case below: one forward and backward on a batch of three sequences of
different lengths, then three AdamW steps (warmup, linear decay and
clipping all active), written to tests/fixtures/<case>_tiny.bin in
torch_ref.py's layout:

    sasrec          causal attention (token t attends to tokens 0..t of its
                    sequence), full softmax; next-item examples: inputs
                    are a sequence's events but the last, every position's
                    target the item after it (unknown id 2 among both)
    sasrec_sampled  the same with the sampled softmax over K = 7 negatives
                    shared by the batch, logQ corrections (logq, V) on
                    every candidate's logit; one negative is a row's target
                    (an accidental hit, left out of that row), one item is
                    drawn twice (counted twice)
    sasrec_preln    sasrec's batch and loss with pre-LN blocks, a final
                    LayerNorm (fln_w, fln_b) and no output transform (no
                    head_w, head_b, headln_w, headln_b): the logits are
                    taken from the encoder's output directly
    cloze_gbce      bidirectional Cloze batch (torch_ref.py's masking) with
                    gBCE over K = 7 negatives, a hit and a duplicate among
                    them, beta = cs_gbce_beta(7, V - 3, 0.75); it has logq
                    too, which gBCE does not use (lib/model.c gives the
                    corrections to the sampled softmax only)

The losses, over logits z = h . wte[j] + out_b[j] at the M predicted
positions (h the output of the dense, GELU and LayerNorm head, or with
pre-LN the encoder's output):
    full     mean cross-entropy, pad and mask (ids 0, 1) out of the softmax
    sampled  mean over rows of logsumexp(z+ - logq[t], z_k - logq[n_k] over
             the non-hit negatives) - (z+ - logq[t])
    gbce     mean over rows of beta softplus(-z+) + sum over non-hit
             negatives of softplus(z_k)

Tensors as torch_ref.py's, plus: objective [causal loss beta] (loss:
lib/sampled.h's CS_LOSS_* code; beta 0 unless gbce), [causal loss beta 1]
for the pre-LN case; neg (K) the shared
negatives and logq (V), where the case has them. logits (M, V) are the raw
full-catalogue logits in every case (cs_bert_score's, before pad and mask
are set to -inf). With next-item examples mpos holds every token.

Run from the repository top: scripts/torch_ref_sasrec.py [DIR] (default
tests/fixtures). Needs Debian's python3-torch (1.13).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as R  # noqa: E402

DT = R.DT
V, C, L, NH, P, FF = R.V, R.C, R.L, R.NH, R.P, R.FF
LOSS = {"full": 0, "sampled": 1, "gbce": 2}
K = 7

CASES = [
    dict(name="sasrec", seed=1357, causal=True, loss="full"),
    dict(name="sasrec_sampled", seed=9753, causal=True, loss="sampled"),
    dict(name="cloze_gbce", seed=8642, causal=False, loss="gbce"),
    dict(name="sasrec_preln", seed=2468, causal=True, loss="full", prenorm=True),
]
HEAD = ["head_w", "head_b", "headln_w", "headln_b"]
PRE_NAMES = [n for n in R.NAMES if n not in HEAD] + ["fln_w", "fln_b"]
PRE_SHAPES = dict(R.SHAPES, fln_w=(C,), fln_b=(C,))


def gbce_beta(k, items, t):
    """lib/sampled.c's cs_gbce_beta, rounded to float32 as C holds it."""
    alpha = min(1.0, k / (items - 1)) if items > 1 else 1.0
    b = alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
    return float(torch.tensor(b, dtype=torch.float32))


def loss_of(case, p, h, targets, neg, logq, beta):
    """The case's loss over the head output h (M, C); the raw logits."""
    logits = h @ p["wte"].T + p["out_b"]                  # (M, V)
    if case["loss"] == "full":
        masked = logits.clone()
        masked[:, :2] = -math.inf   # pad and mask are never predicted
        return logits, F.cross_entropy(masked, targets)
    zp = logits.gather(1, targets[:, None])[:, 0]             # (M)
    zn = logits[:, neg]                                       # (M, K)
    hit = neg[None, :] == targets[:, None]                    # (M, K)
    if case["loss"] == "sampled":
        zp = zp - logq[targets]
        zn = zn - logq[neg][None, :]
        zn = zn.masked_fill(hit, -math.inf)
        lse = torch.logsumexp(torch.cat([zp[:, None], zn], 1), 1)
        return logits, (lse - zp).mean()
    per = beta * F.softplus(-zp) + \
        F.softplus(zn).masked_fill(hit, 0.0).sum(1)
    return logits, per.mean()



def forward(p, case, tok, lengths, mb, mt, targets, neg, logq, beta):
    T = tok.shape[1]
    pos = torch.arange(T)
    pre = case.get("prenorm", False)
    x = R.encode(p, p["wte"][tok] + p["wpe"][pos][None], lengths,
                 causal=case["causal"], prenorm=pre)
    h = x[mb, mt]                                             # (M, C)
    if not pre:
        h = R.gelu(h @ p["head_w"].T + p["head_b"])
        h = R.ln(h, p["headln_w"], p["headln_b"])
    logits, loss = loss_of(case, p, h, targets, neg, logq, beta)
    return x, logits, loss


def make_case(case, path):
    torch.manual_seed(case["seed"])
    if case["causal"]:
        # next-item examples: sequences of 6, 9 and 4 events; the inputs
        # are all but the last, every input's target the event after it
        lengths = torch.tensor([5, 8, 3])
        B, T = len(lengths), int(lengths.max())
        seq = torch.zeros(B, T + 1, dtype=torch.long)
        for b in range(B):
            seq[b, :lengths[b] + 1] = torch.randint(3, V, (int(lengths[b]) + 1,))
        seq[1, 2] = 2                   # unknown: an input and a target
        seq[0, 4] = 2
        tok = seq[:, :T].clone()
        for b in range(B):
            tok[b, lengths[b]:] = 0     # padding
        at = [(b, t) for b in range(B) for t in range(int(lengths[b]))]
        mb = torch.tensor([b for b, _ in at])
        mt = torch.tensor([t for _, t in at])
        targets = seq[mb, mt + 1].clone()
    else:
        # torch_ref.py's Cloze batch: masked positions hold 1
        lengths = torch.tensor([5, 8, 3])
        B, T = len(lengths), int(lengths.max())
        tok = torch.zeros(B, T, dtype=torch.long)
        for b in range(B):
            tok[b, :lengths[b]] = torch.randint(3, V, (int(lengths[b]),))
        tok[1, 5] = 2
        at = [(0, 1), (0, 4), (1, 0), (1, 3), (1, 7), (2, 2)]
        mb = torch.tensor([b for b, _ in at])
        mt = torch.tensor([t for _, t in at])
        targets = tok[mb, mt].clone()
        targets[3] = 2
        tok[mb, mt] = 1

    neg = logq = None
    beta = 0.0
    if case["loss"] != "full":
        # K negatives from the catalogue; one is row 0's target (a hit),
        # one item appears twice
        neg = torch.randint(3, V, (K,))
        neg[1] = targets[0] if targets[0] >= 3 else 3
        neg[5] = neg[2]
        q = torch.softmax(torch.randn(V, dtype=DT), 0)
        logq = torch.log(K * q).float().to(DT)
        if case["loss"] == "gbce":
            beta = gbce_beta(K, V - 3, 0.75)
        nhit = int((neg[None, :] == targets[:, None]).sum())
        assert nhit >= 1 and len(set(neg.tolist())) < K

    pre = case.get("prenorm", False)
    names = PRE_NAMES if pre else R.NAMES
    params = R.init_params(names, PRE_SHAPES if pre else R.SHAPES)
    init = {n: params[n].detach().clone() for n in names}

    def run():
        return forward(params, case, tok, lengths, mb, mt, targets, neg,
                       logq, beta)

    hidden, logits, loss = run()
    loss.backward()
    grads = {n: params[n].grad.detach().clone() for n in names}
    gnorm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    clip = 0.5 * gnorm
    losses = R.adamw_steps(params, names, R.DECAY, lambda: run()[2], clip)

    starts = torch.cumsum(lengths, 0) - lengths
    tensors = [
        ("config", torch.tensor([V, C, L, NH, P, FF])),
        ("objective", torch.tensor([float(case["causal"]),
                                    LOSS[case["loss"]], beta] +
                                   ([1.0] if pre else []), dtype=DT)),
        ("adamw", R.adamw_tensor(clip)),
        ("lengths", lengths), ("tokens", R.pack(tok, lengths)),
        ("positions", torch.cat([torch.arange(int(n)) for n in lengths])),
        ("mpos", starts[mb] + mt), ("mtgt", targets),
    ]
    if neg is not None:
        tensors += [("neg", neg)]
    if logq is not None:
        tensors += [("logq", logq)]
    tensors += [("init." + n, init[n]) for n in names]
    tensors += [("logits", logits.detach()), ("loss", loss.detach().view(1)),
                ("hidden", R.pack(hidden, lengths).detach())]
    tensors += [("grad." + n, grads[n]) for n in names]
    tensors += [("losses", torch.tensor(losses))]
    tensors += [("step3." + n, params[n].detach()) for n in names]
    size = R.write_fixture(path, tensors)
    print("%s: %d tensors, %d bytes, loss %.6f, grad norm %.6f, losses %s%s"
          % (path, len(tensors), size, float(loss), gnorm,
             " ".join("%.6f" % x for x in losses),
             "" if neg is None else ", negatives %s" % neg.tolist()),
          file=sys.stderr)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    for case in CASES:
        make_case(case, os.path.join(out, case["name"] + "_tiny.bin"))


if __name__ == "__main__":
    main()
