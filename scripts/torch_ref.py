#!/usr/bin/python3
"""torch_ref.py - reference state of a tiny BERT4Rec for tests/check_model.c.

Builds the model of lib/model.h in PyTorch (float64, padded batches, BERT's
additive -10000 attention mask on padding), runs one forward and backward on
a batch of three sequences of different lengths, then three AdamW steps
with warmup, linear decay and gradient clipping all active, and writes
everything to tests/fixtures/bert4rec_tiny.bin. The C model runs the same
batch packed, without padding, and must agree tensor by tensor.

Run from the repository top: scripts/torch_ref.py [OUT]. Needs Debian's
python3-torch (1.13); the C tests only need the fixture. Importing it
writes nothing: scripts/torch_ref_tasks.py reuses its encoder, AdamW
steps and writer for the task heads, scripts/torch_ref_sasrec.py for the
causal model and the sampled losses.

Fixture layout, all little endian:
    magic "CSTF", u32 version (1), u32 count of tensors, then count times:
        u32 name length, name bytes (ASCII, no NUL),
        u32 ndim, ndim u32 dims, prod(dims) float32 values (row-major)
    u64 FNV-1a 64 of every byte before it.
Tensors: config [V C L NH P FF]; adamw [lr beta1 beta2 eps wd clip warmup
total steps]; lengths (B); tokens, positions (N) packed; mpos (M) indices
into the packed tokens; mtgt (M); init.<param> (the C layout, named as in
lib/model.c); logits (M, V) raw; loss (1); hidden (N, C) packed final
hidden states; grad.<param>; losses (steps) the loss before each step;
step3.<param> the parameters after the steps. Integers are stored as
float32 (exact below 2^24).
"""
import math
import struct
import sys

import torch
import torch.nn.functional as F

DT = torch.float64

V, C, L, NH, P = 23, 16, 2, 2, 8
FF = 4 * C
HS = C // NH
INIT = 0.1  # larger than the 0.02 default so every path carries signal

NAMES = ["wte", "wpe", "embln_w", "embln_b", "qkv_w", "qkv_b", "proj_w",
         "proj_b", "ln1_w", "ln1_b", "fc_w", "fc_b", "fc2_w", "fc2_b",
         "ln2_w", "ln2_b", "head_w", "head_b", "headln_w", "headln_b",
         "out_b"]
SHAPES = {
    "wte": (V, C), "wpe": (P, C), "embln_w": (C,), "embln_b": (C,),
    "qkv_w": (L, 3 * C, C), "qkv_b": (L, 3 * C), "proj_w": (L, C, C),
    "proj_b": (L, C), "ln1_w": (L, C), "ln1_b": (L, C),
    "fc_w": (L, FF, C), "fc_b": (L, FF), "fc2_w": (L, C, FF),
    "fc2_b": (L, C), "ln2_w": (L, C), "ln2_b": (L, C),
    "head_w": (C, C), "head_b": (C,), "headln_w": (C,), "headln_b": (C,),
    "out_b": (V,),
}
DECAY = {"wte", "wpe", "qkv_w", "proj_w", "fc_w", "fc2_w", "head_w"}


def init_params(names=NAMES, shapes=SHAPES, decay=DECAY):
    """Draw names in order: decayed tensors truncated normal, other *_w
    1 + noise, the rest noise; every value rounded to float32."""
    p = {}
    for n in names:
        s = shapes[n]
        if n in decay:
            t = torch.nn.init.trunc_normal_(torch.empty(s, dtype=DT),
                                            std=INIT, a=-2 * INIT, b=2 * INIT)
        elif n.endswith("_w"):  # LayerNorm weights: 1, perturbed
            t = 1.0 + 0.1 * torch.randn(s, dtype=DT)
        else:  # biases: 0, perturbed
            t = 0.05 * torch.randn(s, dtype=DT)
        # round to float32 so C starts from exactly the same values
        p[n] = t.float().to(DT).requires_grad_(True)
    return p


def gelu(x):
    return F.gelu(x, approximate="tanh")


def ln(x, w, b):
    return F.layer_norm(x, (C,), w, b, eps=1e-12)


def encode(p, x, lengths, causal=False, prenorm=False):
    """Embedding LayerNorm and the L blocks over x (B, T, C), the summed
    input embeddings of a batch padded to T; the final hidden states.
    causal: token t attends to tokens 0..t only (-inf beyond).
    prenorm: each block's LayerNorms at the front of its branches, x + f(ln(x)),
    and a final LayerNorm (fln) after the last block."""
    B, T, _ = x.shape
    pos = torch.arange(T)
    x = ln(x, p["embln_w"], p["embln_b"])
    valid = pos[None, :] < lengths[:, None]                 # (B, T)
    amask = (1.0 - valid.to(DT))[:, None, None, :] * -10000.0
    if causal:
        future = pos[None, :] > pos[:, None]                # (T, T) key > query
        amask = amask.masked_fill(future[None, None], -math.inf)
    for l in range(L):
        a = ln(x, p["ln1_w"][l], p["ln1_b"][l]) if prenorm else x
        qkv = a @ p["qkv_w"][l].T + p["qkv_b"][l]             # (B, T, 3C)
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, NH, HS).transpose(1, 2)
        k = k.view(B, T, NH, HS).transpose(1, 2)
        v = v.view(B, T, NH, HS).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(HS) + amask
        y = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        y = y @ p["proj_w"][l].T + p["proj_b"][l]
        if prenorm:
            x = x + y
            h = gelu(ln(x, p["ln2_w"][l], p["ln2_b"][l]) @ p["fc_w"][l].T
                     + p["fc_b"][l])
            x = x + h @ p["fc2_w"][l].T + p["fc2_b"][l]
            continue
        x = ln(x + y, p["ln1_w"][l], p["ln1_b"][l])
        h = gelu(x @ p["fc_w"][l].T + p["fc_b"][l])
        h = h @ p["fc2_w"][l].T + p["fc2_b"][l]
        x = ln(x + h, p["ln2_w"][l], p["ln2_b"][l])
    if prenorm:
        x = ln(x, p["fln_w"], p["fln_b"])
    return x


def forward(p, tok, lengths, mb, mt, targets):
    """tok (B, Tmax) padded with 0; mb, mt: batch and time of masked."""
    T = tok.shape[1]
    pos = torch.arange(T)
    x = encode(p, p["wte"][tok] + p["wpe"][pos][None], lengths)
    hm = x[mb, mt]                                            # (M, C)
    h = gelu(hm @ p["head_w"].T + p["head_b"])
    h = ln(h, p["headln_w"], p["headln_b"])
    logits = h @ p["wte"].T + p["out_b"]                      # (M, V)
    # pad (0) and mask (1) are never predicted: out of the softmax
    masked = logits.clone()
    masked[:, :2] = -math.inf
    loss = F.cross_entropy(masked, targets)
    return x, logits, loss


# AdamW for the fixtures: warmup 2, decay to 0 at step 4, clipping active
LR, BETAS, EPS, WD = 1e-2, (0.9, 0.999), 1e-6, 0.1
WARMUP, TOTAL, STEPS = 2, 4, 3


def schedule(t):
    if t < WARMUP:
        return (t + 1) / WARMUP
    return max(0.0, (TOTAL - t) / (TOTAL - WARMUP))


def adamw_steps(params, names, decay, loss_fn, clip):
    """STEPS AdamW steps on loss_fn() with the schedule and clipping at
    clip; the loss before each step."""
    opt = torch.optim.AdamW(
        [{"params": [params[n] for n in names if n in decay],
          "weight_decay": WD},
         {"params": [params[n] for n in names if n not in decay],
          "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=EPS)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        l_ = loss_fn()
        l_.backward()
        losses.append(float(l_))
        torch.nn.utils.clip_grad_norm_([params[n] for n in names], clip)
        opt.step()
        sched.step()
    return losses


def adamw_tensor(clip):
    return torch.tensor([LR, BETAS[0], BETAS[1], EPS, WD, clip, WARMUP,
                         TOTAL, STEPS])


def pack(t, lengths):
    """Rows of the padded (B, T, ...) t that hold tokens, back to back."""
    return torch.cat([t[b, :lengths[b]] for b in range(len(lengths))])


def write_fixture(path, tensors):
    """Write the (name, tensor) pairs in the layout above; its size."""
    out = bytearray(b"CSTF")
    out += struct.pack("<II", 1, len(tensors))
    for name, t in tensors:
        t = t.detach().to(torch.float32).contiguous()
        nb = name.encode("ascii")
        out += struct.pack("<I", len(nb)) + nb
        out += struct.pack("<I", t.dim())
        out += struct.pack("<%dI" % t.dim(), *t.shape)
        out += struct.pack("<%df" % t.numel(), *t.flatten().tolist())
    h = 0xcbf29ce484222325
    for byte in out:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    out += struct.pack("<Q", h)
    with open(path, "wb") as f:
        f.write(out)
    return len(out)


def main():
    torch.manual_seed(1234)
    # the batch: three sequences, lengths 5, 8, 3; masked positions hold 1
    lengths = torch.tensor([5, 8, 3])
    B, T = len(lengths), int(lengths.max())
    tok = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        tok[b, :lengths[b]] = torch.randint(3, V, (int(lengths[b]),))
    tok[1, 5] = 2                       # an unknown item in a history
    masked_at = [(0, 1), (0, 4), (1, 0), (1, 3), (1, 7), (2, 2)]
    mb = torch.tensor([b for b, _ in masked_at])
    mt = torch.tensor([t for _, t in masked_at])
    mt_targets = tok[mb, mt].clone()
    mt_targets[3] = 2                   # the unknown id is an ordinary class
    tok[mb, mt] = 1

    params = init_params()
    init = {n: params[n].detach().clone() for n in NAMES}
    hidden, logits, loss = forward(params, tok, lengths, mb, mt, mt_targets)
    loss.backward()
    grads = {n: params[n].grad.detach().clone() for n in NAMES}
    gnorm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))

    clip = 0.5 * gnorm
    losses = adamw_steps(
        params, NAMES, DECAY,
        lambda: forward(params, tok, lengths, mb, mt, mt_targets)[2], clip)

    # packed views of the batch
    packed = pack(tok, lengths)
    positions = torch.cat([torch.arange(int(n)) for n in lengths])
    starts = torch.cumsum(lengths, 0) - lengths
    mpos = starts[mb] + mt
    hidden_packed = pack(hidden, lengths)

    tensors = [
        ("config", torch.tensor([V, C, L, NH, P, FF])),
        ("adamw", adamw_tensor(clip)),
        ("lengths", lengths), ("tokens", packed), ("positions", positions),
        ("mpos", mpos), ("mtgt", mt_targets),
    ]
    tensors += [("init." + n, init[n]) for n in NAMES]
    tensors += [("logits", logits.detach()), ("loss", loss.detach().view(1)),
                ("hidden", hidden_packed.detach())]
    tensors += [("grad." + n, grads[n]) for n in NAMES]
    tensors += [("losses", torch.tensor(losses))]
    tensors += [("step3." + n, params[n].detach()) for n in NAMES]

    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/bert4rec_tiny.bin"
    size = write_fixture(path, tensors)
    print("%s: %d tensors, %d bytes, loss %.6f, grad norm %.6f, losses %s"
          % (path, len(tensors), size, float(loss), gnorm,
             " ".join("%.6f" % x for x in losses)), file=sys.stderr)


if __name__ == "__main__":
    main()
