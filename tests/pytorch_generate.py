"""A charnn conditional generator in PyTorch, as docs/pytorch.md describes:
the mean loss per character (EOS included) of every example of a class
folder, computed by torch.nn.LSTM/GRU/RNN from the checkpoint's tensors; the
shell test compares it with `charnn eval --split all --json`.

    /usr/bin/python3 tests/pytorch_generate.py MODEL.h5 FOLDER [FEATURES.h5 EXAMPLES.h5]

With FEATURES.h5 the condition of example i (in EXAMPLES.h5's order) is row
i of /features; otherwise the class of the file the example is in."""
import os
import sys

import h5py
import torch

path, folder = sys.argv[1], sys.argv[2]
with h5py.File(path, "r") as f:
    a = f.attrs
    cell, L, H, V = str(a["cell"]), int(a["layers"]), int(a["hidden"]), int(a["vocab_size"])
    mode, D = str(a["cond_mode"]), int(a["cond_dim"])
    symbols = [chr(c) for c in f["vocab"][:]]
    labels = [s.decode() if isinstance(s, bytes) else s for s in f["labels"][:]] if "labels" in f else None
    T = {k: torch.from_numpy(f["model"][k][:]).double() for k in f["model"]}
index = {s: i for i, s in enumerate(symbols)}
G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]

examples = []  # (text, condition vector)
if len(sys.argv) > 3:
    feats = torch.from_numpy(h5py.File(sys.argv[3], "r")["features"][:]).double()
    ex = h5py.File(sys.argv[4], "r")
    vocab_ex = [chr(c) for c in ex["vocab"][:]]
    offsets, tokens = ex["offsets"][:], ex["tokens"][:]
    for i in range(len(offsets) - 1):
        text = "".join(vocab_ex[t] for t in tokens[offsets[i]:offsets[i + 1]])
        examples.append((text, feats[i]))
else:
    for name in sorted(os.listdir(folder)):
        c = torch.zeros(D, dtype=torch.float64)
        c[labels.index(name.rsplit(".", 1)[0])] = 1
        for line in open(os.path.join(folder, name), encoding="utf-8"):
            examples.append((line.rstrip("\n"), c))

width = V + (D if mode in ("input", "every") else 0)
rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
    input_size=width, hidden_size=H, num_layers=L).double()
state = {k: T[k] for k in rnn.state_dict()}
if mode in ("input", "every"):
    state["weight_ih_l0"] = torch.cat([T["weight_ih_l0"], T["cond.weight_ih"]], 1)
rnn.load_state_dict(state)
dec = torch.nn.Linear(H, V).double()
dec.load_state_dict({"weight": T["decoder.weight"], "bias": T["decoder.bias"]})

total, count = 0.0, 0
with torch.no_grad():
    for text, c in examples:
        ids = torch.tensor([index["\n"]] + [index[ch] for ch in text] + [index["\n"]])
        x = torch.nn.functional.one_hot(ids[:-1], V).double()
        if mode in ("input", "every"):
            cond = c.unsqueeze(0).repeat(len(x), 1)
            if mode == "input":
                cond[1:] = 0
            x = torch.cat([x, cond], 1)
        if mode == "init":
            h0 = torch.stack([c @ T[f"cond.weight_h_l{k}"].T + T[f"cond.bias_h_l{k}"] for k in range(L)]).unsqueeze(1)
            if cell == "lstm":
                c0 = torch.stack([c @ T[f"cond.weight_c_l{k}"].T + T[f"cond.bias_c_l{k}"] for k in range(L)]).unsqueeze(1)
                out, _ = rnn(x.unsqueeze(1), (h0, c0))
            else:
                out, _ = rnn(x.unsqueeze(1), h0)
        else:
            out, _ = rnn(x.unsqueeze(1))
        loss = torch.nn.functional.cross_entropy(dec(out.squeeze(1)), ids[1:], reduction="sum")
        total += loss.item()
        count += len(ids) - 1
print(f"{total / count:.6f}")
