"""PyTorch CPU twin of recflow's tfjs two-tower training step, for bench/train.ts.

    python bench/train_twin.py <spec.json> <out.json>

spec.json (written by bench/train.ts) names the dataset folder (lib/data/dataset.ts layout), the initial weights
(recflow checkpoint: checkpoint.json + weights.bin, kinds/two-tower/spec.ts names and shapes), the examples of each
epoch (users.bin int32, items.bin int32, labels.bin float32, written from kinds/two-tower/trainer.ts epochExamples),
the config, and the thread counts to run.

The same model (kinds/two-tower/spec.ts):
  user tower: concat(E_user[u], E_segment[seg(u)], E_region[reg(u)]) -> Linear(hidden) -> relu -> Linear(out)
  item tower: concat(E_item[i], E_category, E_brand, mean of non-zero title-token embeddings, price) -> same
  logit = dot(user, item); mean BCE on logits + l2 * (mean ||E_user[u]||^2 + mean ||E_item[i]||^2)
  Adam(lr * decay^epoch, betas (0.9, 0.999), eps 1e-7 = tfjs's), the same batches in the same order.
Written as a PyTorch engineer would: nn.Embedding / nn.Linear, F.binary_cross_entropy_with_logits, torch.optim.Adam
(default foreach implementation), batches sliced from tensors, no per-step host syncs except the loss .item().

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
        self.e_user, self.e_seg, self.e_reg = emb("user_embedding"), emb("segment_embedding"), emb("region_embedding")
        self.e_item, self.e_cat = emb("item_embedding"), emb("category_embedding")
        self.e_brand, self.e_tok = emb("brand_embedding"), emb("token_embedding")

        def linear(prefix):
            k = w[f"{prefix}/kernel"]
            layer = nn.Linear(k.shape[0], k.shape[1])
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(k.T))
                layer.bias.copy_(torch.tensor(w[f"{prefix}/bias"]))
            return layer

        self.u1, self.u2, self.i1, self.i2 = (linear(p) for p in ["user_dense1", "user_dense2", "item_dense1",
                                                                  "item_dense2"])
        self.register_buffer("seg", torch.tensor(ds["users.segment"], dtype=torch.long))
        self.register_buffer("reg", torch.tensor(ds["users.region"], dtype=torch.long))
        self.register_buffer("cat", torch.tensor(ds["items.category"], dtype=torch.long))
        self.register_buffer("brand", torch.tensor(ds["items.brand"], dtype=torch.long))
        self.register_buffer("price", torch.tensor(ds["items.price"]).reshape(-1, 1))
        self.register_buffer("title", torch.tensor(ds["items.titleTokens"], dtype=torch.long).reshape(-1, TITLE_LEN))

    def forward(self, u, i):
        eu = self.e_user(u)
        xu = torch.cat([eu, self.e_seg(self.seg[u]), self.e_reg(self.reg[u])], 1)
        toks = self.title[i]
        mask = (toks != 0).float()
        mean = (self.e_tok(toks) * mask.unsqueeze(2)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        ei = self.e_item(i)
        xi = torch.cat([ei, self.e_cat(self.cat[i]), self.e_brand(self.brand[i]), mean, self.price[i]], 1)
        user = self.u2(F.relu(self.u1(xu)))
        item = self.i2(F.relu(self.i1(xi)))
        return (user * item).sum(1), eu, ei


def load_epoch(prefix):
    return (torch.from_numpy(np.fromfile(prefix + "users.bin", dtype=np.int32).astype(np.int64)),
            torch.from_numpy(np.fromfile(prefix + "items.bin", dtype=np.int32).astype(np.int64)),
            torch.from_numpy(np.fromfile(prefix + "labels.bin", dtype=np.float32)))


def run_epoch(model, opt, c, epoch, ex, record=False):
    for g in opt.param_groups:
        g["lr"] = c["learningRate"] * c["learningRateDecay"] ** epoch
    users, items, labels = ex
    n, bs = len(users), c["batchSize"]
    losses = []
    total = 0.0
    t0, p0 = time.perf_counter(), time.process_time()
    for lo in range(0, n, bs):
        u, i, y = users[lo:lo + bs], items[lo:lo + bs], labels[lo:lo + bs]
        z, eu, ei = model(u, i)
        loss = F.binary_cross_entropy_with_logits(z, y)
        if c["l2"] > 0:
            loss = loss + c["l2"] * ((eu * eu).sum(1).mean() + (ei * ei).sum(1).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        v = loss.item()
        total += v * len(u)
        if record:
            losses.append(v)
    wall, cpu = time.perf_counter() - t0, time.process_time() - p0
    return {"samples": n, "seconds": wall, "cpuSeconds": cpu, "samplesPerSec": n / wall, "loss": total / n,
            "batchLosses": losses}


def main():
    spec_file, out = sys.argv[1:3]
    spec = json.load(open(spec_file))
    c = spec["config"]
    ds = load_dataset(spec["dataset"])
    w = load_weights(spec["weights"])
    epochs = [load_epoch(p) for p in spec["epochs"]]
    results = []
    for threads in spec["threads"]:
        torch.set_num_threads(threads)
        model = TwoTower(ds, w)
        opt = torch.optim.Adam(model.parameters(), lr=c["learningRate"], betas=(0.9, 0.999), eps=1e-7)
        first = run_epoch(model, opt, c, 0, epochs[0], record=True)
        timed = run_epoch(model, opt, c, 1, epochs[1])
        del timed["batchLosses"]
        print(f"pytorch {threads} thread(s): {timed['samplesPerSec']:.0f} samples/s", flush=True)
        results.append({"threads": threads, "timedEpoch": timed, "epoch0Loss": first["loss"],
                        "epoch0BatchLosses": first["batchLosses"][: spec.get("parityBatches", 20)]})
    json.dump({"framework": f"torch {torch.__version__} CPU", "results": results}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
