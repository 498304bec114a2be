#!/usr/bin/python3
"""Load a charnn checkpoint into torch.nn.{LSTM,GRU,RNN} with h5py and compute
the mean cross-entropy of a text from a zero state, as `charnn eval --batch 1`
does. Prints one JSON line: {"loss": ..., "tokens": ...}.

    pytorch_interop.py MODEL.h5 TEXT
This is the snippet of docs/pytorch.md, runnable."""
import json
import sys

import h5py
import torch

path, text_path = sys.argv[1], sys.argv[2]
with h5py.File(path, "r") as f:
    a = f.attrs
    cell, L, H, V, E = a["cell"], int(a["layers"]), int(a["hidden"]), int(a["vocab_size"]), int(a["embed"])
    symbols = [chr(c) for c in f["vocab"][:]]
    tensors = {name: torch.from_numpy(f["model"][name][:]) for name in f["model"]}

rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
rnn = rnn_class(input_size=E if E > 0 else V, hidden_size=H, num_layers=L)
rnn.load_state_dict({k: tensors[k] for k in rnn.state_dict()})
decoder = torch.nn.Linear(H, V)
decoder.load_state_dict({"weight": tensors["decoder.weight"], "bias": tensors["decoder.bias"]})
embedding = None
if E > 0:
    embedding = torch.nn.Embedding(V, E)
    embedding.load_state_dict({"weight": tensors["embedding.weight"]})

index = {s: i for i, s in enumerate(symbols)}
with open(text_path, encoding="utf-8") as t:
    ids = torch.tensor([index[c] for c in t.read()], dtype=torch.long)
x, y = ids[:-1], ids[1:]
with torch.no_grad():
    inp = embedding(x) if embedding is not None else torch.nn.functional.one_hot(x, V).float()
    out, _ = rnn(inp.unsqueeze(1))  # (T, 1, H), zero initial state
    loss = torch.nn.functional.cross_entropy(decoder(out.squeeze(1)), y)
print(json.dumps({"loss": loss.item(), "tokens": int(y.numel())}))
