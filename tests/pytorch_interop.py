#!/usr/bin/python3
"""Load a charnn checkpoint into torch.nn.{LSTM,GRU,RNN} with h5py and compute
its loss as `charnn eval` does. Prints one JSON line.

    pytorch_interop.py MODEL.h5 TEXT
        a language model: the mean cross-entropy of the text from a zero state,
        as `charnn eval --batch 1`; {"loss": ..., "tokens": ...}
    pytorch_interop.py MODEL.h5 EXAMPLES.h5 SPLIT
        a classifier (head "classify"): every example of the split of an
        examples file from a zero state, the top states pooled over its length
        (last, mean or max, the model's head_pool) into nn.Linear
        "classifier"; {"loss": mean cross-entropy, "accuracy": ..., "examples": n}
    pytorch_interop.py MODEL.h5 FEATURES.h5
        a vector classifier (task "classify_features"): every row of the
        file's /features, standardised, through nn.Sequential(nn.Linear,
        nn.Tanh or nn.ReLU, nn.Linear) (--layers 0) or one step of the stack with the
        input [1 ; x] (weight_ih_l0 widened by cond.weight_ih), as `charnn
        eval --split all`; {"loss": ..., "accuracy": ..., "examples": n}
    pytorch_interop.py MODEL.h5 TAGS.h5 SPLIT
        a tagger (head "tag"): every example of the split of a tag file from a
        zero state, nn.Linear "tagger" on the top state at each character;
        {"loss": mean cross-entropy per character, "accuracy": ..., "examples":
        characters}
A bidirectional checkpoint (attribute bidirectional = 1) loads into the same
module built with bidirectional=True: its *_reverse tensors are PyTorch's, and
the heads read the 2H features [forward; reverse].

This is the snippet of docs/pytorch.md, runnable."""
import json
import sys

import h5py
import torch

path = sys.argv[1]
with h5py.File(path, "r") as f:
    a = f.attrs
    cell, L, H, V, E = a["cell"], int(a["layers"]), int(a["hidden"]), int(a["vocab_size"]), int(a["embed"])
    head = a["head"] if "head" in a else "lm"
    task = a["task"] if "task" in a else "lm"
    activation = a["activation"] if "activation" in a else "tanh"
    pool = a["head_pool"] if "head_pool" in a else "last"
    max_len = int(a["max_len"]) if "max_len" in a else 0
    bidir = bool(int(a["bidirectional"])) if "bidirectional" in a else False
    symbols = [chr(c) for c in f["vocab"][:]]
    labels = [s.decode() for s in f["labels"][:]] if "labels" in f else []
    tensors = {name: torch.from_numpy(f["model"][name][:]) for name in f["model"]}

if task == "classify_features":
    # a vector classifier: x (N, D) of the file, standardised by the model's
    # features.mean / features.std; every row of the file, as `charnn eval --split all`
    C = len(labels)
    with h5py.File(sys.argv[2], "r") as g:
        x = torch.from_numpy(g["features"][:]).double()
        raw = g["labels"][:]
        given = [s.decode() for s in g["label_names"][:]] if "label_names" in g else None
    y = torch.tensor([labels.index(given[v] if given else str(v)) for v in raw])
    z = (x - tensors["features.mean"].double()) / tensors["features.std"].double()
    D = z.shape[1]
    if L == 0:
        # --layers 0: nn.Linear(D, H), tanh (or relu: attribute activation), nn.Linear(H, C)
        act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[activation]
        model = torch.nn.Sequential(torch.nn.Linear(D, H), act(), torch.nn.Linear(H, C))
        model.load_state_dict({"0.weight": tensors["mlp.weight"], "0.bias": tensors["mlp.bias"],
                               "2.weight": tensors["classifier.weight"],
                               "2.bias": tensors["classifier.bias"]})
        model = model.double()
        forward = model
    else:
        # one step of the stack, its input [1 ; z]: weight_ih_l0 widened by cond.weight_ih
        rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        rnn = rnn_class(input_size=V + D, hidden_size=H, num_layers=L)
        w = {k: tensors[k] for k in rnn.state_dict()}
        w["weight_ih_l0"] = torch.cat([tensors["weight_ih_l0"], tensors["cond.weight_ih"]], 1)
        rnn.load_state_dict(w)
        rnn = rnn.double()
        classifier = torch.nn.Linear(H, C).double()
        classifier.load_state_dict({"weight": tensors["classifier.weight"].double(),
                                    "bias": tensors["classifier.bias"].double()})

        def forward(v):
            top, _ = rnn(torch.cat([torch.ones(len(v), 1, dtype=v.dtype), v], 1).unsqueeze(0))
            return classifier(top[0])
    with torch.no_grad():
        logits = forward(z)
        loss = torch.nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(1) == y).double().mean().item()
    print(json.dumps({"loss": loss, "accuracy": accuracy, "examples": len(y)}))
    sys.exit(0)

rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
rnn = rnn_class(input_size=E if E > 0 else V, hidden_size=H, num_layers=L, bidirectional=bidir)
W = 2 * H if bidir else H  # the width of the top states a head reads
rnn.load_state_dict({k: tensors[k] for k in rnn.state_dict()})
embedding = None
if E > 0:
    embedding = torch.nn.Embedding(V, E)
    embedding.load_state_dict({"weight": tensors["embedding.weight"]})


def inputs(ids):
    return embedding(ids) if embedding is not None else torch.nn.functional.one_hot(ids, V).float()


if head == "classify":
    C = len(labels)
    classifier = torch.nn.Linear(W, C)
    classifier.load_state_dict({"weight": tensors["classifier.weight"], "bias": tensors["classifier.bias"]})
    split = sys.argv[3]
    with h5py.File(sys.argv[2], "r") as f:
        names = [s.decode() for s in f["label_names"][:]]
        assert names == labels, (names, labels)
        assert list(f["vocab"][:]) == [ord(s) for s in symbols]
        b, e = (0, int(f.attrs["n_examples"])) if split == "all" else (
            int(f.attrs[split + "_begin"]), int(f.attrs[split + "_end"]))
        offsets = f["offsets"][b:e + 1]
        tokens = torch.from_numpy(f["tokens"][offsets[0]:offsets[-1]].astype("int64"))
        y = torch.from_numpy(f["labels"][b:e].astype("int64"))
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(e - b):
            ids = tokens[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]
            if max_len > 0:
                ids = ids[:max_len]
            out, _ = rnn(inputs(ids).unsqueeze(1))  # (T, 1, H), zero initial state
            out = out.squeeze(1)
            pooled = {"last": lambda o: o[-1], "mean": lambda o: o.mean(0),
                      "max": lambda o: o.max(0).values}[pool](out)
            logits = classifier(pooled).double()
            total += torch.nn.functional.cross_entropy(logits.unsqueeze(0), y[i:i + 1]).item()
            correct += int(logits.argmax().item() == y[i].item())
    n = e - b
    print(json.dumps({"loss": total / n, "accuracy": correct / n, "examples": n}))
    sys.exit(0)

if head == "tag":
    K = len(labels)
    tagger = torch.nn.Linear(W, K)
    tagger.load_state_dict({"weight": tensors["tagger.weight"], "bias": tensors["tagger.bias"]})
    split = sys.argv[3]
    with h5py.File(sys.argv[2], "r") as f:
        assert list(f["vocab"][:]) == [ord(s) for s in symbols]
        b, e = (0, int(f.attrs["n_examples"])) if split == "all" else (
            int(f.attrs[split + "_begin"]), int(f.attrs[split + "_end"]))
        offsets = f["offsets"][b:e + 1]
        tokens = torch.from_numpy(f["tokens"][offsets[0]:offsets[-1]].astype("int64"))
        tags = torch.from_numpy(f["tags"][offsets[0]:offsets[-1]].astype("int64"))
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for i in range(e - b):
            lo, hi = offsets[i] - offsets[0], offsets[i + 1] - offsets[0]
            if max_len > 0:
                hi = min(hi, lo + max_len)
            out, _ = rnn(inputs(tokens[lo:hi]).unsqueeze(1))  # (T, 1, W), zero initial state
            logits = tagger(out.squeeze(1)).double()
            total += torch.nn.functional.cross_entropy(logits, tags[lo:hi], reduction="sum").item()
            correct += int((logits.argmax(1) == tags[lo:hi]).sum().item())
            n += int(hi - lo)
    print(json.dumps({"loss": total / n, "accuracy": correct / n, "examples": n}))
    sys.exit(0)

text_path = sys.argv[2]
decoder = torch.nn.Linear(H, V)
decoder.load_state_dict({"weight": tensors["decoder.weight"], "bias": tensors["decoder.bias"]})
index = {s: i for i, s in enumerate(symbols)}
with open(text_path, encoding="utf-8") as t:
    ids = torch.tensor([index[c] for c in t.read()], dtype=torch.long)
x, y = ids[:-1], ids[1:]
with torch.no_grad():
    out, _ = rnn(inputs(x).unsqueeze(1))  # (T, 1, H), zero initial state
    loss = torch.nn.functional.cross_entropy(decoder(out.squeeze(1)), y)
print(json.dumps({"loss": loss.item(), "tokens": int(y.numel())}))
