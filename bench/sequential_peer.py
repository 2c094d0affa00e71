"""PyTorch twin of recflow's tfjs sequential recommender (kinds/sequential), for bench/sequential.ts.

    python bench/sequential_peer.py <dataset dir> <spec.json> <out.json>

Reads the dataset folder in the lib/data/dataset.ts layout (raw little-endian column files + manifest.json +
vocab.json) and trains the same model with the same hyperparameters (spec.json: {"config": SequentialConfig,
"threads": n, "speedBatches": n}):
  item vector = E_item[i] (+ E_category[cat(i)] + E_brand[brand(i)] with itemFeatures), learned positions;
  pre-LayerNorm blocks: x += Dropout(Wo MHA_causal(LN1(x))); x += Dropout(W2 Dropout(relu(W1 LN2(x)))); padding
  rows zeroed; final LayerNorm; logits = <h_t, item vector>.
  Init N(0, 0.02) for embeddings and kernels, zeros for biases, ones for LayerNorm gains; LayerNorm eps 1e-6.
  Training windows of maxLength steps cut from each user's training sequence from its end, batches of windows of
  similar length trimmed to the longest, sampled softmax with `negatives` items shared by the batch (uniform, or
  proportional to (count + 1)^0.75 with the logQ correction), accidental hits masked; Adam, learning rate *
  decay^epoch; early stopping on validation NDCG@10 (whole catalogue ranked from the training history, training
  items excluded, popularity for users without history); the best epoch's weights for the test split.
Differences: random streams differ (numpy/torch generators, not recflow's mulberry32).

Speed: target steps per second over the training epochs (the same definition as tfjs' samplesPerSec), with
`threads` intra-op threads.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MASK = -1e9


def load(d):
    man = json.load(open(os.path.join(d, "manifest.json")))
    vocab = json.load(open(os.path.join(d, "vocab.json")))
    dt = {"int32": np.int32, "float32": np.float32, "float64": np.float64}

    def col(key):
        return np.fromfile(os.path.join(d, key + ".bin"), dtype=dt[man["columns"][key]])

    ds = {"vocab": vocab, "category": col("items.category"), "brand": col("items.brand"),
          "popularity": col("items.popularity")}
    for s in ["train", "validation", "test"]:
        ds[s] = {c: col(f"{s}.{c}") for c in ["user", "item"]}
    return ds


def sequences(ds, splits, n_users):
    seqs = [[] for _ in range(n_users)]
    for s in splits:
        for u, i in zip(ds[s]["user"], ds[s]["item"]):
            seqs[u].append(int(i))
    return seqs


def windows(seqs, L):
    inputs, targets = [], []
    for seq in seqs:
        b = len(seq) - 1
        while b >= 1:
            a = max(0, b - L)
            x = np.zeros(L, np.int64)
            y = np.zeros(L, np.int64)
            x[L - (b - a):] = seq[a:b]
            y[L - (b - a):] = seq[a + 1:b + 1]
            inputs.append(x)
            targets.append(y)
            b = a
    return np.stack(inputs), np.stack(targets)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hiddenDim"]
        self.ln1 = torch.nn.LayerNorm(d, eps=1e-6)
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.out = torch.nn.Linear(d, d)
        self.ln2 = torch.nn.LayerNorm(d, eps=1e-6)
        self.ffn1 = torch.nn.Linear(d, c["innerDim"])
        self.ffn2 = torch.nn.Linear(c["innerDim"], d)
        self.heads = c["heads"]
        self.drop = torch.nn.Dropout(c["dropout"])

    def forward(self, x, additive, mask3):
        B, w, d = x.shape
        H = self.heads
        dh = d // H
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q = q.view(B, w, H, dh).transpose(1, 2)
        k = k.view(B, w, H, dh).transpose(1, 2)
        v = v.view(B, w, H, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) * (1 / math.sqrt(dh)) + additive
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, w, d)
        x = x + self.drop(self.out(ctx))
        f = self.drop(torch.relu(self.ffn1(self.ln2(x))))
        return (x + self.drop(self.ffn2(f))) * mask3


class SASRec(torch.nn.Module):
    def __init__(self, c, n_items, n_cat, n_brand, category, brand):
        super().__init__()
        d = c["hiddenDim"]
        self.c = c
        self.item = torch.nn.Embedding(n_items, d)
        self.features = c["itemFeatures"]
        if self.features:
            self.cat = torch.nn.Embedding(n_cat, d)
            self.brand = torch.nn.Embedding(n_brand, d)
            self.register_buffer("category", torch.as_tensor(category, dtype=torch.long))
            self.register_buffer("brand_of", torch.as_tensor(brand, dtype=torch.long))
        self.pos = torch.nn.Embedding(c["maxLength"], d)
        self.blocks = torch.nn.ModuleList([Block(c) for _ in range(c["blocks"])])
        self.ln = torch.nn.LayerNorm(d, eps=1e-6)
        self.drop = torch.nn.Dropout(c["dropout"])
        L = c["maxLength"]
        self.register_buffer("causal", torch.tril(torch.ones(L, L)))
        for m in self.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
                torch.nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.zeros_(m.bias)

    def table(self):
        t = self.item.weight
        if self.features:
            t = t + self.cat.weight[self.category] + self.brand.weight[self.brand_of]
        return t

    def forward(self, h, table):
        B, w = h.shape
        L = self.c["maxLength"]
        mask = (h != 0).float()
        mask3 = mask.unsqueeze(2)
        x = self.drop(table[h] + self.pos.weight[L - w:]) * mask3
        allowed = self.causal[L - w:, L - w:].unsqueeze(0) * mask.unsqueeze(1)
        additive = ((1 - allowed) * MASK).unsqueeze(1)
        for b in self.blocks:
            x = b(x, additive, mask3)
        return self.ln(x)


def rank_split(model, ds, split, hist_seqs, train_sets, pop, L, batch=256):
    """HR@10 / NDCG@10: relevant = split items not in training; training items and item 0 excluded."""
    rel = {}
    for u, i in zip(ds[split]["user"], ds[split]["item"]):
        if i != 0 and int(i) not in train_sets[u]:
            rel.setdefault(int(u), set()).add(int(i))
    users = sorted(rel)
    ndcg = hr = 0.0
    model.eval()
    with torch.no_grad():
        table = model.table()
        for s in range(0, len(users), batch):
            chunk = users[s:s + batch]
            width = max(1, min(L, max(len(hist_seqs[u]) for u in chunk)))
            h = np.zeros((len(chunk), width), np.int64)
            for r, u in enumerate(chunk):
                seq = hist_seqs[u][-width:]
                if seq:
                    h[r, width - len(seq):] = seq
            out = model(torch.as_tensor(h), table)[:, -1] @ table.T
            scores = out.numpy()
            for r, u in enumerate(chunk):
                sc = pop.copy() if not hist_seqs[u] else scores[r].copy()
                sc[0] = -np.inf
                for i in train_sets[u]:
                    sc[i] = -np.inf
                top = np.argsort(-sc, kind="stable")[:10]
                R = rel[u]
                ndcg += sum(1 / math.log2(k + 2) for k, i in enumerate(top) if i in R) / sum(
                    1 / math.log2(k + 2) for k in range(min(len(R), 10)))
                hr += any(i in R for i in top)
    model.train()
    return {"ndcg10": ndcg / len(users), "hr10": hr / len(users), "users": len(users)}


def main():
    data_dir, spec_file, out_file = sys.argv[1:4]
    spec = json.load(open(spec_file))
    c = spec["config"]
    for key, default in [("weightByLabel", False), ("l2", 0)]:
        if c.get(key, default) != default:
            raise SystemExit(f"the twin implements {key} = {default} only, got {c[key]}")
    torch.set_num_threads(int(spec.get("threads", 1)))
    torch.manual_seed(c["seed"])
    rng = np.random.default_rng(c["seed"])
    ds = load(data_dir)
    n_users, n_items = len(ds["vocab"]["users"]), len(ds["vocab"]["items"])
    L = c["maxLength"]
    train_seqs = sequences(ds, ["train"], n_users)
    train_sets = [set(s) for s in train_seqs]
    X, Y = windows(train_seqs, L)
    lengths = (X != 0).sum(1)
    pop = ds["popularity"].astype(np.float64)
    model = SASRec(c, n_items, len(ds["vocab"]["categories"]), len(ds["vocab"]["brands"]), ds["category"],
                   ds["brand"])
    opt = torch.optim.Adam(model.parameters(), lr=c["learningRate"], eps=1e-7)
    S = c["negatives"]
    full = S == 0 or S >= n_items - 1
    if c["negativeSampling"] == "uniform":
        q = np.r_[0.0, np.ones(n_items - 1)]
    else:
        q = np.r_[0.0, (pop[1:] + 1) ** 0.75]
    q /= q.sum()
    log_q = torch.as_tensor(np.log(np.maximum(q, 1e-30)), dtype=torch.float32)
    correct = c["negativeSampling"] != "uniform"
    history, best, best_state, stopped = [], None, None, False
    total_steps = total_secs = 0.0
    for epoch in range(c["epochs"]):
        if best is not None and epoch - best["epoch"] > c["earlyStoppingPatience"]:
            stopped = True
            break
        for g in opt.param_groups:
            g["lr"] = c["learningRate"] * c["learningRateDecay"] ** epoch
        order = rng.permutation(len(X))
        order = order[np.argsort(lengths[order], kind="stable")]
        batches = [order[i:i + c["batchSize"]] for i in range(0, len(order), c["batchSize"])]
        rng.shuffle(batches)
        t0 = time.perf_counter()
        steps = 0
        loss_sum = 0.0
        for rows in batches:
            width = max(1, int(lengths[rows].max()))
            h = torch.as_tensor(X[rows][:, L - width:])
            yb = Y[rows][:, L - width:]
            if c["targetsAhead"] > 1:
                # Each step's target drawn uniformly among its next targetsAhead items of the window.
                t = np.arange(width)
                span = np.minimum(c["targetsAhead"], width - t)
                k = (rng.random(yb.shape) * span).astype(np.int64)
                yb = np.where(yb != 0, np.take_along_axis(yb, t + k, axis=1), 0)
            y = torch.as_tensor(yb).reshape(-1)
            sel = (y != 0).nonzero().squeeze(1)
            tgt = y[sel]
            table = model.table()
            hidden = model(h, table).reshape(-1, c["hiddenDim"])[sel]
            if full:
                logits = hidden @ table.T
                logits[:, 0] = MASK
                ce = F.cross_entropy(logits, tgt, reduction="none")
            else:
                negs = torch.as_tensor(rng.choice(n_items, size=S, p=q))
                pos = (hidden * table[tgt]).sum(1)
                neg = hidden @ table[negs].T
                neg = neg.masked_fill(tgt.unsqueeze(1) == negs.unsqueeze(0), MASK)
                if correct:
                    pos = pos - log_q[tgt]
                    neg = neg - log_q[negs]
                logits = torch.cat([pos.unsqueeze(1), neg], 1)
                ce = torch.logsumexp(logits, 1) - logits[:, 0]
            loss = ce.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if not math.isfinite(loss.item()):
                raise SystemExit(f"diverged at epoch {epoch}")
            steps += len(sel)
            loss_sum += loss.item() * len(sel)
        secs = time.perf_counter() - t0
        total_steps += steps
        total_secs += secs
        val = rank_split(model, ds, "validation", train_seqs, train_sets, pop, L)
        rec = {"epoch": epoch, "loss": loss_sum / steps, "ndcg10": val["ndcg10"], "hr10": val["hr10"],
               "seconds": secs, "samples": steps, "samplesPerSec": steps / secs}
        print(json.dumps(rec), flush=True)
        history.append(rec)
        if best is None or rec["ndcg10"] > best["ndcg10"]:
            best = rec
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    test = rank_split(model, ds, "test", train_seqs, train_sets, pop, L)
    hist_tv = sequences(ds, ["train", "validation"], n_users)
    test_tv = rank_split(model, ds, "test", hist_tv, train_sets, pop, L)
    json.dump({
        "framework": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "bestEpoch": best["epoch"],
        "epochsRun": len(history),
        "stoppedEarly": stopped,
        "samplesPerSec": total_steps / total_secs,
        "test": test,
        "testWithValidationHistory": test_tv,
        "history": history,
    }, open(out_file, "w"), indent=2)


if __name__ == "__main__":
    main()
