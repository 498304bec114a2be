#!/usr/bin/env python3
"""PyTorch reference for `charnn train --task classify`: the same examples file,
the same model and the same batches, timed the same way.

  /usr/bin/python3 bench/torch_classify_bench.py --data names.h5 --cell gru --layers 2 \
      --hidden 256 --batch 64 --steps 60 --warmup 10 --threads 1

Data: an examples file written by `charnn prepare --task classify` (read with h5py:
/tokens, /offsets, /labels, /label_names, /vocab and the split attributes,
docs/examples-format.md). Model: one-hot input (a dense (T, B, V) tensor, what
nn.LSTM takes; charnn gathers the same columns) or nn.Embedding, nn.LSTM / nn.GRU /
nn.RNN (tanh), packed with pack_padded_sequence so no step runs past a row's
length, pooled over each row's length (last: the final state of the top layer;
mean; max), nn.Linear, cross-entropy, Adam, gradient clipping at 5. Batches: the
training split drawn as charnn's exorder draws them (a seeded permutation, sorted
by length within windows of --bucket batches, the batches shuffled), padded to the
batch's longest row (cut at --max-len).

Prints one JSON line: examples/s over the timed steps (after --warmup untimed
ones), the mean padding fraction, the last loss and, with --eval, the accuracy on
the test split.
"""
import argparse
import json
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def load(path):
    f = h5py.File(path, "r")
    ex = {
        "tokens": f["tokens"][...].astype(np.int64),
        "offsets": f["offsets"][...],
        "labels": f["labels"][...].astype(np.int64),
        "V": int(f["vocab"].shape[0]),
        "C": int(f["label_names"].shape[0]),
    }
    for s in ("train", "val", "test"):
        ex[s] = (int(f.attrs[s + "_begin"]), int(f.attrs[s + "_end"]))
    return ex


def batches(ex, split, B, bucket, max_len, seed, shuffle=True):
    """Example indices of each batch of one epoch, as exorder orders them."""
    b, e = ex[split]
    idx = np.arange(b, e)
    rng = np.random.default_rng(seed)
    if shuffle:
        idx = rng.permutation(idx)
    lengths = ex["offsets"][1:] - ex["offsets"][:-1]
    if bucket > 0:
        w = bucket * B
        idx = np.concatenate([sorted(idx[i:i + w], key=lambda k: lengths[k])
                              for i in range(0, len(idx), w)]) if len(idx) else idx
    out = [idx[i:i + B] for i in range(0, len(idx), B)]
    if shuffle:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def make_batch(ex, rows, max_len):
    off, tok = ex["offsets"], ex["tokens"]
    lens = np.minimum(off[rows + 1] - off[rows], max_len if max_len > 0 else 1 << 30)
    T = int(lens.max())
    x = np.zeros((T, len(rows)), dtype=np.int64)
    for j, r in enumerate(rows):
        x[:lens[j], j] = tok[off[r]:off[r] + lens[j]]
    return torch.from_numpy(x), torch.from_numpy(lens), torch.from_numpy(ex["labels"][rows])


class Classifier(nn.Module):
    def __init__(self, cell, V, E, H, L, C, pool):
        super().__init__()
        self.V, self.pool = V, pool
        self.embedding = nn.Embedding(V, E) if E > 0 else None
        D = E if E > 0 else V
        if cell == "lstm":
            self.rnn = nn.LSTM(D, H, L)
        elif cell == "gru":
            self.rnn = nn.GRU(D, H, L)
        else:
            self.rnn = nn.RNN(D, H, L, nonlinearity="tanh")
        self.classifier = nn.Linear(H, C)
        for p in self.parameters():
            nn.init.uniform_(p, -0.08, 0.08)

    def forward(self, x, lens):
        inp = self.embedding(x) if self.embedding is not None else F.one_hot(x, self.V).float()
        packed = pack_padded_sequence(inp, lens, enforce_sorted=False)
        out, h = self.rnn(packed)
        if self.pool == "last":
            top = (h[0] if isinstance(h, tuple) else h)[-1]
        else:
            seq, _ = pad_packed_sequence(out)  # (T, B, H), zeros past each length
            mask = (torch.arange(seq.shape[0])[:, None] < lens[None, :]).unsqueeze(2)
            if self.pool == "mean":
                top = seq.sum(0) / lens[:, None].float()
            else:
                top = seq.masked_fill(~mask, float("-inf")).max(0).values
        return self.classifier(top)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=0)
    ap.add_argument("--pool", default="last", choices=["last", "mean", "max"])
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--bucket", type=int, default=50)
    ap.add_argument("--max-len", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--eval", action="store_true", help="also the test split's accuracy")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    ex = load(a.data)
    model = Classifier(a.cell, ex["V"], a.embed, a.hidden, a.layers, ex["C"], a.pool)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    epoch, plan, k = 0, batches(ex, "train", a.batch, a.bucket, a.max_len, a.seed), 0
    timed = examples = 0
    pad_sum = 0.0
    loss = torch.tensor(float("nan"))
    for step in range(a.warmup + a.steps):
        if k == len(plan):
            epoch, k = epoch + 1, 0
            plan = batches(ex, "train", a.batch, a.bucket, a.max_len, a.seed + epoch)
        rows = plan[k]
        k += 1
        t0 = time.perf_counter()
        x, lens, y = make_batch(ex, rows, a.max_len)
        opt.zero_grad()
        loss = F.cross_entropy(model(x, lens), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step >= a.warmup:
            timed += time.perf_counter() - t0
            examples += len(rows)
            pad_sum += 1.0 - float(lens.sum()) / (x.shape[0] * x.shape[1])
    res = {"impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
           "cell": a.cell, "layers": a.layers, "hidden": a.hidden, "embed": a.embed,
           "pool": a.pool, "batch": a.batch, "steps": a.steps,
           "examples_per_s": examples / timed if timed > 0 else float("nan"),
           "padding": pad_sum / max(1, a.steps), "last_loss": float(loss)}
    if a.eval:
        model.eval()
        correct = n = 0
        with torch.no_grad():
            for rows in batches(ex, "test", 256, a.bucket, a.max_len, 0, shuffle=False):
                x, lens, y = make_batch(ex, rows, a.max_len)
                correct += int((model(x, lens).argmax(1) == y).sum())
                n += len(rows)
        res["test_accuracy"] = correct / max(1, n)
    print(json.dumps(res))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
