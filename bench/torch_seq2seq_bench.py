#!/usr/bin/env python3
"""The charnn seq2seq model in PyTorch: the reference for bench/seq2seq_targets.sh.

Same architecture and parameter names as charnn (include/charnn/seq2seq.h,
docs/pytorch.md): encoder/decoder torch.nn.LSTM|GRU|RNN (time-major, one-hot
input or src_embed/tgt_embed), the decoder starting from each row's final
encoder state, Luong attention on the decoder's top state (dot, general:
attn.weight, additive: attn.enc/attn.dec/attn.v) with attn.combine =
tanh(W [ctx; h] + b), output layer out. Reads charnn's pairs files (HDF5).

  check --model M --data PAIRS [--split test]
      charnn's weights loaded by name; the padding-free teacher-forced loss of
      the split as JSON (tests/cli_seq2seq_pytorch.sh compares it with charnn eval)
  train --data PAIRS [--cell lstm --hidden 256 --layers 1 --embed 0 --attention none
        --batch 32 --epochs 10 --lr 2e-3 --clip 5 --seed 1 --threads 1]
      trains the same model with Adam and global-norm clipping, the loss of a
      batch normalised by its target characters (EOS included) as charnn does;
      prints JSON: held-out loss (test split), training target chars/s
"""
import argparse
import json
import math
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

EOS, BOS, SPECIALS = 0, 1, 2


class Attention(torch.nn.Module):
    def __init__(self, kind, H):
        super().__init__()
        self.kind = kind
        self.combine = torch.nn.Linear(2 * H, H)
        if kind == "general":
            self.weight = torch.nn.Parameter(torch.empty(H, H))
        elif kind == "additive":
            self.enc = torch.nn.Linear(H, H, bias=False)
            self.dec = torch.nn.Linear(H, H)
            self.v = torch.nn.Linear(H, 1, bias=False)

    def forward(self, dec, enc, src_len):
        """dec (T, B, H), enc (S, B, H), src_len (B) -> attention output (T, B, H), weights (B, T, S)"""
        S = enc.shape[0]
        e_b = enc.transpose(0, 1)  # (B, S, H)
        d_b = dec.transpose(0, 1)  # (B, T, H)
        if self.kind == "dot":
            score = d_b @ e_b.transpose(1, 2)
        elif self.kind == "general":
            score = d_b @ (e_b @ self.weight.t()).transpose(1, 2)
        else:
            k = self.enc(e_b).unsqueeze(1)  # (B, 1, S, H)
            q = self.dec(d_b).unsqueeze(2)  # (B, T, 1, H)
            score = self.v(torch.tanh(k + q)).squeeze(-1)
        pad = torch.arange(S, device=enc.device)[None, :] >= src_len[:, None]  # (B, S)
        score = score.masked_fill(pad[:, None, :], float("-inf"))
        a = torch.softmax(score, dim=-1)
        ctx = (a @ e_b).transpose(0, 1)  # (T, B, H)
        return torch.tanh(self.combine(torch.cat([ctx, dec], dim=-1))), a


class Seq2Seq(torch.nn.Module):
    def __init__(self, cell, V, Vt, H, L, E, attention):
        super().__init__()
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        self.V, self.Vt, self.E = V, Vt, E
        if E > 0:
            self.src_embed = torch.nn.Embedding(V, E)
            self.tgt_embed = torch.nn.Embedding(Vt, E)
        self.encoder = rnn(E if E > 0 else V, H, L)
        self.decoder = rnn(E if E > 0 else Vt, H, L)
        self.attn = Attention(attention, H) if attention != "none" else None
        self.out = torch.nn.Linear(H, Vt)

    def embed(self, ids, table, n):
        return table(ids) if self.E > 0 else F.one_hot(ids, n).float()

    def forward(self, src, src_len, dec_in):
        """src (S, B), src_len (B), dec_in (T, B) -> logits (T, B, Vt)"""
        xs = self.embed(src, getattr(self, "src_embed", None), self.V)
        packed = torch.nn.utils.rnn.pack_padded_sequence(xs, src_len.cpu(), enforce_sorted=False)
        enc_p, state = self.encoder(packed)
        enc, _ = torch.nn.utils.rnn.pad_packed_sequence(enc_p, total_length=src.shape[0])
        dec, _ = self.decoder(self.embed(dec_in, getattr(self, "tgt_embed", None), self.Vt), state)
        if self.attn is not None:
            dec, _ = self.attn(dec, enc, src_len)
        return self.out(dec)


def load_pairs(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        n = [int(a["n_train"]), int(a["n_val"]), int(a["n_test"])]
        src, soff = f["src_ids"][:], f["src_offsets"][:]
        tgt, toff = f["tgt_ids"][:], f["tgt_offsets"][:]
        V, Vt = len(f["vocab_source"]), len(f["vocab_target"]) + SPECIALS
    pairs = [(src[soff[i]:soff[i + 1]], tgt[toff[i]:toff[i + 1]]) for i in range(len(soff) - 1)]
    splits, at = {}, 0
    for name, k in zip(["train", "val", "test"], n):
        splits[name] = pairs[at:at + k]
        at += k
    return splits, V, Vt


def make_batch(pairs):
    """time-major tensors: src (S, B), src_len (B), dec_in (T, B), y (T, B), mask (T, B)"""
    B = len(pairs)
    S = max(len(s) for s, _ in pairs)
    T = max(len(t) + 1 for _, t in pairs)
    src = np.zeros((S, B), np.int64)
    y = np.full((T, B), EOS, np.int64)
    mask = np.zeros((T, B), np.float32)
    for b, (s, t) in enumerate(pairs):
        src[:len(s), b] = s
        y[:len(t), b] = t
        mask[:len(t) + 1, b] = 1
    dec_in = np.concatenate([np.full((1, B), BOS, np.int64), y[:-1]], axis=0)
    return (torch.from_numpy(src), torch.tensor([len(s) for s, _ in pairs]),
            torch.from_numpy(dec_in), torch.from_numpy(y), torch.from_numpy(mask))


def batch_loss(model, pairs):
    src, src_len, dec_in, y, mask = make_batch(pairs)
    logits = model(src, src_len, dec_in)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    return (nll * mask.reshape(-1)).sum(), mask.sum()


def heldout(model, pairs, rows=64):
    total, chars = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(pairs), rows):
            l, c = batch_loss(model, pairs[i:i + rows])
            total += l.item()
            chars += c.item()
    return total / max(chars, 1), chars


def load_charnn(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        cell = a["cell"].decode() if isinstance(a["cell"], bytes) else str(a["cell"])
        attn = a["attention"].decode() if isinstance(a["attention"], bytes) else str(a["attention"])
        L, H, E = int(a["layers"]), int(a["hidden"]), int(a["embed"])
        V, Vt = len(f["vocab"]), len(f["labels"])
        tensors = {k: torch.from_numpy(f["model"][k][:]) for k in f["model"]}
    model = Seq2Seq(cell, V, Vt, H, L, E, attn)
    state = model.state_dict()
    missing = set(state) ^ set(tensors)
    if missing:
        sys.exit("names differ between charnn and PyTorch: %s" % sorted(missing))
    model.load_state_dict({k: tensors[k].reshape(state[k].shape) for k in state})
    return model


def cmd_check(args):
    torch.set_num_threads(1)
    model = load_charnn(args.model)
    splits, _, _ = load_pairs(args.data)
    loss, chars = heldout(model, splits[args.split])
    print(json.dumps({"loss": loss, "target_chars": chars}))


def cmd_train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    splits, V, Vt = load_pairs(args.data)
    model = Seq2Seq(args.cell, V, Vt, args.hidden, args.layers, args.embed, args.attention)
    for p in model.parameters():  # charnn's uniform init
        torch.nn.init.uniform_(p, -0.08, 0.08)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    train = splits["train"]
    rng = np.random.default_rng(args.seed)
    chars_seen, t_train, steps = 0.0, 0.0, 0
    for epoch in range(args.epochs):
        order = rng.permutation(len(train))
        # length buckets as charnn's exorder: windows of 32 batches sorted by length
        win = 32 * args.batch
        batches = []
        for w in range(0, len(order), win):
            chunk = sorted(order[w:w + win], key=lambda i: max(len(train[i][0]), len(train[i][1]) + 1))
            batches += [chunk[j:j + args.batch] for j in range(0, len(chunk), args.batch)]
        rng.shuffle(batches)
        for bidx in batches:
            if args.max_steps and steps >= args.max_steps:
                break
            t0 = time.perf_counter()
            loss, chars = batch_loss(model, [train[i] for i in bidx])
            opt.zero_grad()
            (loss / chars).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            t_train += time.perf_counter() - t0
            chars_seen += chars.item()
            steps += 1
    loss, chars = heldout(model, splits["test"])
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": args.threads,
                      "steps": steps, "epochs": args.epochs, "test_loss": loss,
                      "test_bpc": loss / math.log(2), "train_target_chars_per_s":
                      chars_seen / t_train if t_train > 0 else 0.0}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--model", required=True)
    c.add_argument("--data", required=True)
    c.add_argument("--split", default="test", choices=["train", "val", "test"])
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--layers", type=int, default=1)
    t.add_argument("--embed", type=int, default=0)
    t.add_argument("--attention", default="none", choices=["none", "dot", "general", "additive"])
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--max-steps", type=int, default=0)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--clip", type=float, default=5.0)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    (cmd_check if args.cmd == "check" else cmd_train)(args)


if __name__ == "__main__":
    main()
