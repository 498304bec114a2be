#!/usr/bin/python3
"""The PyTorch peer of `charnn sample --count N`: load a charnn checkpoint into
torch.nn.{LSTM,GRU,RNN} by name (as tests/pytorch_interop.py and docs/pytorch.md
do), then draw N samples of LENGTH characters together, one batch row each:
per character one step of the network on N rows, a softmax at the temperature
and one multinomial draw per row. Times the generation loop alone (loading
and warm-up excluded), like `charnn sample --timing`, and prints one JSON line:
{"count": N, "length": L, "threads": T, "seconds": S, "chars_per_s": C}.

    sample_bench.py MODEL.h5 [--count N] [--length L] [--threads T] [--temperature X]
"""
import argparse
import json
import time

import h5py
import torch


def load(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        cell, L, H, V, E = (a["cell"], int(a["layers"]), int(a["hidden"]),
                            int(a["vocab_size"]), int(a["embed"]))
        if isinstance(cell, bytes):
            cell = cell.decode()
        tensors = {name: torch.from_numpy(f["model"][name][:]) for name in f["model"]}
    rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    rnn = rnn_class(input_size=E if E > 0 else V, hidden_size=H, num_layers=L)
    rnn.load_state_dict({k: tensors[k] for k in rnn.state_dict()})
    decoder = torch.nn.Linear(H, V)
    decoder.load_state_dict({"weight": tensors["decoder.weight"],
                             "bias": tensors["decoder.bias"]})
    embedding = None
    if E > 0:
        embedding = torch.nn.Embedding(V, E)
        embedding.load_state_dict({"weight": tensors["embedding.weight"]})
    return rnn, decoder, embedding, V


def generate(rnn, decoder, embedding, V, count, length, temperature, gen):
    x = torch.randint(V, (count,), generator=gen)
    state = None
    for _ in range(length):
        inp = embedding(x) if embedding is not None else \
            torch.nn.functional.one_hot(x, V).float()
        out, state = rnn(inp.unsqueeze(0), state)  # (1, N, H)
        p = torch.softmax(decoder(out[0]) / temperature, dim=1)
        x = torch.multinomial(p, 1, generator=gen).squeeze(1)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rnn, decoder, embedding, V = load(args.model)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        generate(rnn, decoder, embedding, V, args.count, 10, args.temperature, gen)  # warm-up
        t0 = time.perf_counter()
        generate(rnn, decoder, embedding, V, args.count, args.length, args.temperature, gen)
        seconds = time.perf_counter() - t0
    chars = args.count * args.length
    print(json.dumps({"count": args.count, "length": args.length, "threads": args.threads,
                      "seconds": round(seconds, 4), "chars_per_s": round(chars / seconds, 1)}))


if __name__ == "__main__":
    main()
