"""PyTorch CPU twin of recflow's tfjs two-tower training step, for bench/train.ts.

    python bench/train_twin.py <spec.json> <out.json>

spec.json (written by bench/train-twin.ts) names the dataset folder (lib/data/dataset.ts layout), the initial weights
(recflow checkpoint: checkpoint.json + weights.bin, kinds/two-tower/spec.ts names and shapes), the batches of each
epoch as kinds/two-tower/trainer.ts buildBatch made them (concatenated over the epoch's batches: users, targets int32;
history int32 and historyValid float32 [n, L]; dropout float32 [n, width]; idGate float32 [batches, items];
maskCount int32 [n] and maskItems int32: the items each example's logits mask), the config, the catalogue size and
the thread counts to run.

The same model (kinds/two-tower/spec.ts), the whole catalogue scored each step:
  item tower: concat(gate * E_item[i], E_category, E_brand, mean of non-zero title-token embeddings, price)
              -> Linear(hidden) -> relu -> Linear(out + 1)   (item vectors and biases, for every item)
  user tower: h = softmax over valid history positions of history_position[:L], times the history items' vectors;
              u = h + Linear(out)(relu(Linear(hidden)(dropout(concat(h, E_segment[seg], E_region[reg])))))
  logits = u @ V^T + bias, earlier items and item 0 at -1e9; cross-entropy on the next item
  AdamW (lr * decay^epoch, betas (0.9, 0.999), eps 1e-7 = tfjs's; weight decay l2 on tables and kernels, not on
  biases nor history_position), the same batches in the same order. recflow decays after the Adam step, AdamW before
  it: the same up to a factor (1 - lr * l2) on one step's update.
Written as a PyTorch engineer would: nn.Embedding / nn.Linear, F.cross_entropy, torch.optim.AdamW (default foreach
implementation), the masks scattered with index_put_, no per-step host syncs except the loss .item().

For each thread count: epoch 0 (warm-up, its per-batch losses recorded for the parity check against tfjs), then
epoch 1 timed (wall and process CPU seconds), from the same initial weights.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TITLE_LEN = 8
MASKED = -1e9


def load_dataset(d):
    man = json.load(open(os.path.join(d, "manifest.json")))
    dt = {"int32": np.int32, "float32": np.float32, "float64": np.float64}

    def col(key):
        return np.fromfile(os.path.join(d, key + ".bin"), dtype=dt[man["columns"][key]])

    return {k: col(k) for k in ["users.segment", "users.region", "items.category", "items.brand", "items.price",
                                "items.titleTokens"]}


def load_weights(d):
    meta = json.load(open(os.path.join(d, "checkpoint.json")))
    flat = np.fromfile(os.path.join(d, "weights.bin"), dtype=np.float32)
    return {e["name"]: flat[e["offset"]:e["offset"] + e["length"]].reshape(e["shape"]) for e in meta["weights"]}


class TwoTower(nn.Module):
    def __init__(self, ds, w):
        super().__init__()
        emb = lambda name: nn.Embedding.from_pretrained(torch.tensor(w[name]), freeze=False)  # noqa: E731
        self.e_item, self.e_cat = emb("item_embedding"), emb("category_embedding")
        self.e_brand, self.e_tok = emb("brand_embedding"), emb("token_embedding")
        self.e_seg, self.e_reg = emb("segment_embedding"), emb("region_embedding")
        self.pos = nn.Parameter(torch.tensor(w["history_position"]))

        def linear(prefix):
            k = w[f"{prefix}/kernel"]
            layer = nn.Linear(k.shape[0], k.shape[1])
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(k.T))
                layer.bias.copy_(torch.tensor(w[f"{prefix}/bias"]))
            return layer

        self.i1, self.i2, self.u1, self.u2 = (linear(p) for p in ["item_dense1", "item_dense2", "user_dense1",
                                                                  "user_dense2"])
        self.register_buffer("seg", torch.tensor(ds["users.segment"], dtype=torch.long))
        self.register_buffer("reg", torch.tensor(ds["users.region"], dtype=torch.long))
        self.register_buffer("cat", torch.tensor(ds["items.category"], dtype=torch.long))
        self.register_buffer("brand", torch.tensor(ds["items.brand"], dtype=torch.long))
        self.register_buffer("price", torch.tensor(ds["items.price"]).reshape(-1, 1))
        title = torch.tensor(ds["items.titleTokens"], dtype=torch.long).reshape(-1, TITLE_LEN)
        mask = (title != 0).float()
        self.register_buffer("title", title)
        self.register_buffer("title_w", mask / mask.sum(1, keepdim=True).clamp(min=1.0))

    def forward(self, gate, users, history, valid, drop):
        d = self.u2.out_features
        title = (self.e_tok(self.title) * self.title_w.unsqueeze(2)).sum(1)
        xi = torch.cat([self.e_item.weight * gate.unsqueeze(1), self.e_cat(self.cat), self.e_brand(self.brand), title,
                        self.price], 1)
        out = self.i2(F.relu(self.i1(xi)))
        vecs, bias = out[:, :d], out[:, d]
        w = torch.softmax(self.pos[: history.shape[1]] + (1 - valid) * MASKED, dim=1)
        pooled = torch.bmm(w.unsqueeze(1), vecs[history]).squeeze(1)
        x = torch.cat([pooled, self.e_seg(self.seg[users]), self.e_reg(self.reg[users])], 1)
        if drop is not None:
            x = x * drop
        u = self.u2(F.relu(self.u1(x))) + pooled
        return u @ vecs.T + bias


def load_epoch(prefix, c, items):
    def arr(name, dtype):
        return torch.from_numpy(np.fromfile(prefix + name + ".bin", dtype=dtype))

    L = c["historyLength"]
    users = arr("users", np.int32).long()
    n = len(users)
    drop = arr("dropout", np.float32)
    return {
        "users": users,
        "targets": arr("targets", np.int32).long(),
        "history": arr("history", np.int32).long().reshape(n, L),
        "valid": arr("historyValid", np.float32).reshape(n, L),
        "drop": drop.reshape(n, -1) if len(drop) else None,
        "gate": arr("idGate", np.float32).reshape(-1, items),
        "maskCount": arr("maskCount", np.int32).long(),
        "maskItems": arr("maskItems", np.int32).long(),
    }


def run_epoch(model, opt, c, epoch, ex, items, record=False):
    for g in opt.param_groups:
        g["lr"] = c["learningRate"] * c["learningRateDecay"] ** epoch
    n, bs = len(ex["users"]), c["batchSize"]
    starts = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(ex["maskCount"], 0)])
    losses = []
    total = 0.0
    t0, p0 = time.perf_counter(), time.process_time()
    for b, lo in enumerate(range(0, n, bs)):
        hi = min(n, lo + bs)
        counts = ex["maskCount"][lo:hi]
        rows = torch.repeat_interleave(torch.arange(hi - lo), counts)
        cols = ex["maskItems"][starts[lo]:starts[hi]]
        mask = torch.zeros(hi - lo, items)
        mask.index_put_((rows, cols), torch.tensor(MASKED))
        drop = ex["drop"][lo:hi] if ex["drop"] is not None else None
        logits = model(ex["gate"][b], ex["users"][lo:hi], ex["history"][lo:hi], ex["valid"][lo:hi], drop) + mask
        loss = F.cross_entropy(logits, ex["targets"][lo:hi])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        v = loss.item()
        total += v * (hi - lo)
        if record:
            losses.append(v)
    wall, cpu = time.perf_counter() - t0, time.process_time() - p0
    return {"samples": n, "seconds": wall, "cpuSeconds": cpu, "samplesPerSec": n / wall, "loss": total / n,
            "batchLosses": losses}


def main():
    spec_file, out = sys.argv[1:3]
    spec = json.load(open(spec_file))
    c = spec["config"]
    items = spec["items"]
    ds = load_dataset(spec["dataset"])
    w = load_weights(spec["weights"])
    epochs = [load_epoch(p, c, items) for p in spec["epochs"]]
    results = []
    for threads in spec["threads"]:
        torch.set_num_threads(threads)
        model = TwoTower(ds, w)
        decay = [p for name, p in model.named_parameters() if not name.endswith("bias") and name != "pos"]
        rest = [p for name, p in model.named_parameters() if name.endswith("bias") or name == "pos"]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["l2"]}, {"params": rest, "weight_decay": 0.0}],
                                lr=c["learningRate"], betas=(0.9, 0.999), eps=1e-7)
        first = run_epoch(model, opt, c, 0, epochs[0], items, record=True)
        timed = run_epoch(model, opt, c, 1, epochs[1], items)
        del timed["batchLosses"]
        print(f"pytorch {threads} thread(s): {timed['samplesPerSec']:.0f} samples/s", flush=True)
        results.append({"threads": threads, "timedEpoch": timed, "epoch0Loss": first["loss"],
                        "epoch0BatchLosses": first["batchLosses"][: spec.get("parityBatches", 20)]})
    json.dump({"framework": f"torch {torch.__version__} CPU", "results": results}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
