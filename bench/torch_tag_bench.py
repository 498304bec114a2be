#!/usr/bin/env python3
"""PyTorch reference for `charnn train --task tag`: the same tag file, the same
model and the same batches, timed the same way.

  /usr/bin/python3 bench/torch_tag_bench.py --data spacing.h5 --cell lstm --layers 2 \
      --hidden 256 --embed 64 --bidirectional --batch 64 --steps 100 --warmup 10 --threads 1

Data: a tag file written by `charnn prepare --task tag` (read with h5py: /tokens,
/offsets, /tags, /label_names, /vocab and the split attributes,
docs/examples-format.md). Model: one-hot input (a dense (T, B, V) tensor) or
nn.Embedding, nn.LSTM / nn.GRU / nn.RNN (tanh), unidirectional or
bidirectional=True, packed with pack_padded_sequence so no step runs past a
row's length (the reverse direction starts at each row's own last character, as
charnn's), nn.Linear "tagger" on the top states at every step, cross-entropy
over the tagged characters (padding ignored) normalised by their number, Adam,
gradient clipping at 5. Batches: the training split drawn as charnn's exorder
draws them (torch_classify_bench.batches: a seeded permutation, sorted by length
within windows of --bucket batches, the batches shuffled), padded to the batch's
longest row (cut at --max-len).

Prints one JSON line: tagged characters per second over the timed steps (after
--warmup untimed ones), the mean padding fraction and the last loss.
"""
import argparse
import json
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_classify_bench import batches  # noqa: E402  (the same example order)


def load(path):
    f = h5py.File(path, "r")
    if "tags" not in f:
        sys.exit("torch_tag_bench.py: '%s' is not a tag file (charnn prepare --task tag)" % path)
    ex = {
        "tokens": f["tokens"][...].astype(np.int64),
        "offsets": f["offsets"][...],
        "tags": f["tags"][...].astype(np.int64),
        "V": int(f["vocab"].shape[0]),
        "K": int(f["label_names"].shape[0]),
    }
    for s in ("train", "val", "test"):
        ex[s] = (int(f.attrs[s + "_begin"]), int(f.attrs[s + "_end"]))
    return ex


def make_batch(ex, rows, max_len):
    """x (T, B), lens (B), y (T, B) with -100 (ignored) past each row's length."""
    off, tok, tags = ex["offsets"], ex["tokens"], ex["tags"]
    lens = np.minimum(off[rows + 1] - off[rows], max_len if max_len > 0 else 1 << 30)
    T = int(lens.max())
    x = np.zeros((T, len(rows)), dtype=np.int64)
    y = np.full((T, len(rows)), -100, dtype=np.int64)
    for j, r in enumerate(rows):
        x[:lens[j], j] = tok[off[r]:off[r] + lens[j]]
        y[:lens[j], j] = tags[off[r]:off[r] + lens[j]]
    return torch.from_numpy(x), torch.from_numpy(lens), torch.from_numpy(y)


class Tagger(nn.Module):
    def __init__(self, cell, V, E, H, L, K, bidirectional):
        super().__init__()
        self.V = V
        self.embedding = nn.Embedding(V, E) if E > 0 else None
        D = E if E > 0 else V
        kw = dict(bidirectional=bidirectional)
        if cell == "lstm":
            self.rnn = nn.LSTM(D, H, L, **kw)
        elif cell == "gru":
            self.rnn = nn.GRU(D, H, L, **kw)
        else:
            self.rnn = nn.RNN(D, H, L, nonlinearity="tanh", **kw)
        self.tagger = nn.Linear(2 * H if bidirectional else H, K)
        for p in self.parameters():
            nn.init.uniform_(p, -0.08, 0.08)

    def forward(self, x, lens):
        inp = self.embedding(x) if self.embedding is not None else F.one_hot(x, self.V).float()
        out, _ = self.rnn(pack_padded_sequence(inp, lens, enforce_sorted=False))
        seq, _ = pad_packed_sequence(out)  # (T, B, W), zeros past each length
        return self.tagger(seq)            # (T, B, K)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=0)
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--bucket", type=int, default=50)
    ap.add_argument("--max-len", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=123)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    ex = load(a.data)
    model = Tagger(a.cell, ex["V"], a.embed, a.hidden, a.layers, ex["K"], a.bidirectional)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    epoch, plan, k = 0, batches(ex, "train", a.batch, a.bucket, a.max_len, a.seed), 0
    timed = 0.0
    chars = 0
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
        logits = model(x, lens)
        loss = F.cross_entropy(logits.reshape(-1, ex["K"]), y[:logits.shape[0]].reshape(-1),
                               ignore_index=-100)  # the mean over the tagged characters
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step >= a.warmup:
            timed += time.perf_counter() - t0
            chars += int(lens.sum())
            pad_sum += 1.0 - float(lens.sum()) / (x.shape[0] * x.shape[1])
    res = {"impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
           "cell": a.cell, "layers": a.layers, "hidden": a.hidden, "embed": a.embed,
           "bidirectional": a.bidirectional, "batch": a.batch, "steps": a.steps,
           "chars_per_s": chars / timed if timed > 0 else float("nan"),
           "padding": pad_sum / max(1, a.steps), "last_loss": float(loss)}
    print(json.dumps(res))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
