#!/usr/bin/python3
"""torch_ref_tasks.py - reference states of the task heads for tests/check_model.c.

The model of lib/model.h with extra categorical event inputs and a binary
head, in PyTorch (float64, padded batches), on top of scripts/torch_ref.py's
encoder, AdamW steps and fixture writer. For each case below: one forward
and backward on a batch of three sequences of different lengths, then
three AdamW steps (warmup, linear decay and clipping all active), written
to tests/fixtures/<case>_tiny.bin in torch_ref.py's layout:

    session  session head, [CLS] pooling: each sequence ends in a [MASK]
             token (item 1, its extra inputs 1 too) whose final hidden
             state is scored; NF 2 extra inputs (6 and 9 ids) summed into
             the embedding; positives weigh 3
    concat   event head at six chosen events; NF 2 extra inputs (5 and 7
             ids) joined to the item embedding and projected back to C
             (in_w, in_b); positives weigh 2
    mean     session head, mean pooling over each sequence; NF 1 extra
             input (5 ids) summed; positives weigh 0.5

The binary heads: h pooled from the final hidden states,
logit = cls_w . tanh(pool_w h + pool_b) + cls_b, loss = sum over the M
examples of w * BCE(logit, y) / sum of w, where w is pos_weight for y = 1
and 1 for y = 0.

Tensors as torch_ref.py's, except: config [V C L NH P FF NF head pool
combine pos_weight VF_1 .. VF_NF] (head, pool, combine: lib/model.h's
CS_HEAD_*, CS_POOL_*, CS_COMBINE_* codes); ftokens (N, NF) the packed
extra inputs; mtgt (M) labels 0 or 1; logits (M) raw, before the sigmoid;
init./grad./step3. only for the tensors the config uses (no cloze output
layer; in_w and in_b only with concat). With mean pooling mpos holds each
sequence's last token and is unused (M = B).

Run from the repository top: scripts/torch_ref_tasks.py [DIR] (default
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

HEAD = {"cloze": 0, "session": 1, "event": 2}
POOL = {"cls": 0, "mean": 1}
COMBINE = {"sum": 0, "concat": 1}

CASES = [
    dict(name="session", seed=4321, head="session", pool="cls",
         combine="sum", VF=[6, 9], pos_weight=3.0, lengths=[5, 8, 3],
         cls=True, labels=[1, 0, 1]),
    dict(name="concat", seed=8765, head="event", pool="cls",
         combine="concat", VF=[5, 7], pos_weight=2.0, lengths=[5, 8, 3],
         cls=False, events=[(0, 1), (0, 4), (1, 0), (1, 3), (1, 7), (2, 2)],
         labels=[1, 0, 0, 1, 1, 0]),
    dict(name="mean", seed=2468, head="session", pool="mean",
         combine="sum", VF=[5], pos_weight=0.5, lengths=[4, 7, 2],
         cls=False, labels=[0, 1, 1]),
]


def model_tensors(case):
    """Names in lib/model.c's buffer order, their shapes and the decayed."""
    NF, SF = len(case["VF"]), sum(case["VF"])
    names = R.NAMES[:16] + ["fte"]
    shapes = {n: R.SHAPES[n] for n in R.NAMES[:16]}
    shapes["fte"] = (SF, C)
    if case["combine"] == "concat":
        names += ["in_w", "in_b"]
        shapes["in_w"] = (C, (1 + NF) * C)
        shapes["in_b"] = (C,)
    names += ["pool_w", "pool_b", "cls_w", "cls_b"]
    shapes.update({"pool_w": (C, C), "pool_b": (C,), "cls_w": (C,),
                   "cls_b": (1,)})
    decay = (R.DECAY - {"head_w"}) | {"fte", "in_w", "pool_w", "cls_w"}
    return names, shapes, decay


def forward(p, case, tok, ftok, lengths, mb, mt, y):
    """tok (B, T), ftok (B, T, NF) padded with 0; mb, mt: batch and time
    of the scored tokens (unused with mean pooling); y (M) labels."""
    T = tok.shape[1]
    pos = torch.arange(T)
    base = [sum(case["VF"][:f]) for f in range(len(case["VF"]))]
    rows = [p["fte"][base[f] + ftok[:, :, f]] for f in range(len(base))]
    if case["combine"] == "sum":
        x = p["wte"][tok] + p["wpe"][pos][None]
        for r in rows:
            x = x + r
    else:
        e = torch.cat([p["wte"][tok]] + rows, dim=-1)      # (B, T, (1+NF)C)
        x = e @ p["in_w"].T + p["in_b"] + p["wpe"][pos][None]
    x = R.encode(p, x, lengths)
    if case["pool"] == "mean" and case["head"] == "session":
        valid = (pos[None, :] < lengths[:, None]).to(DT)     # (B, T)
        hm = (x * valid[:, :, None]).sum(1) / lengths[:, None].to(DT)
    else:
        hm = x[mb, mt]                                       # (M, C)
    hh = torch.tanh(hm @ p["pool_w"].T + p["pool_b"])
    logits = hh @ p["cls_w"] + p["cls_b"]                    # (M)
    w = torch.where(y == 1, torch.tensor(case["pos_weight"], dtype=DT),
                    torch.tensor(1.0, dtype=DT))
    loss = F.binary_cross_entropy_with_logits(
        logits, y.to(DT), weight=w, reduction="sum") / w.sum()
    return x, logits, loss


def make_case(case, path):
    torch.manual_seed(case["seed"])
    VF, NF = case["VF"], len(case["VF"])
    lengths = torch.tensor(case["lengths"])
    B, T = len(lengths), int(lengths.max())
    tok = torch.zeros(B, T, dtype=torch.long)
    ftok = torch.zeros(B, T, NF, dtype=torch.long)
    for b in range(B):
        n = int(lengths[b])
        tok[b, :n] = torch.randint(3, V, (n,))
        for f in range(NF):
            ftok[b, :n, f] = torch.randint(3, VF[f], (n,))
    tok[1, 2] = 2                       # unknown ids are ordinary inputs
    ftok[0, 1, 0] = 2
    ftok[1, 3, NF - 1] = 2
    if case["cls"]:                     # [CLS]: a [MASK] token at the end
        for b in range(B):
            tok[b, lengths[b] - 1] = 1
            ftok[b, lengths[b] - 1, :] = 1
    if "events" in case:
        at = case["events"]
    else:                               # each sequence's last token
        at = [(b, int(lengths[b]) - 1) for b in range(B)]
    mb = torch.tensor([b for b, _ in at])
    mt = torch.tensor([t for _, t in at])
    y = torch.tensor(case["labels"])

    names, shapes, decay = model_tensors(case)
    params = R.init_params(names, shapes, decay)
    init = {n: params[n].detach().clone() for n in names}

    def run():
        return forward(params, case, tok, ftok, lengths, mb, mt, y)

    hidden, logits, loss = run()
    loss.backward()
    grads = {n: params[n].grad.detach().clone() for n in names}
    gnorm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    clip = 0.5 * gnorm
    losses = R.adamw_steps(params, names, decay, lambda: run()[2], clip)

    starts = torch.cumsum(lengths, 0) - lengths
    config = [V, C, L, NH, P, FF, NF, HEAD[case["head"]],
              POOL[case["pool"]], COMBINE[case["combine"]],
              case["pos_weight"]] + VF
    tensors = [
        ("config", torch.tensor(config, dtype=DT)),
        ("adamw", R.adamw_tensor(clip)),
        ("lengths", lengths), ("tokens", R.pack(tok, lengths)),
        ("positions", torch.cat([torch.arange(int(n)) for n in lengths])),
        ("ftokens", R.pack(ftok, lengths)),
        ("mpos", starts[mb] + mt), ("mtgt", y),
    ]
    tensors += [("init." + n, init[n]) for n in names]
    tensors += [("logits", logits.detach()), ("loss", loss.detach().view(1)),
                ("hidden", R.pack(hidden, lengths).detach())]
    tensors += [("grad." + n, grads[n]) for n in names]
    tensors += [("losses", torch.tensor(losses))]
    tensors += [("step3." + n, params[n].detach()) for n in names]
    size = R.write_fixture(path, tensors)
    print("%s: %d tensors, %d bytes, logits %s, loss %.6f, grad norm %.6f, "
          "losses %s" % (path, len(tensors), size,
                         " ".join("%.4f" % z for z in logits.tolist()),
                         float(loss), gnorm,
                         " ".join("%.6f" % x for x in losses)),
          file=sys.stderr)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    for case in CASES:
        make_case(case, os.path.join(out, case["name"] + "_tiny.bin"))


if __name__ == "__main__":
    main()
