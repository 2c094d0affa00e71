"""Keras (TF-CPU) peer of recflow's tfjs two-tower training, for bench/train.ts.

    python bench/train_peer.py <dataset dir> <spec.json> <out.json>

Reads the dataset folder in the lib/dataset.ts layout (raw little-endian column files + manifest.json + vocab.json)
and builds the same model as lib/model-spec.ts / lib/train/model.ts:
  user tower: concat(E_user[u], E_segment[seg(u)], E_region[reg(u)]) -> Dense(hidden, relu) -> Dense(out)
  item tower: concat(E_item[i], E_category, E_brand, mean of non-zero title-token embeddings, price)
              -> Dense(hidden, relu) -> Dense(out)
  logit = dot(user, item); binary cross-entropy on logits; Adam, learning rate * decay^epoch;
  negativesPerPositive uniform negatives per positive, reshuffled each epoch; the same batch size; early stopping
  on validation NDCG@10 (whole catalog ranked, training items excluded) and the best epoch's weights for the test.
Differences: the L2 term on the touched embedding rows (1e-6) is not applied; random streams differ.

Speed: two epochs on `speedPositives` positives, the second timed (as bench/train.ts does for tfjs); with
`"speedOnly": true` in spec.json only that.
"""
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

TITLE_LEN = 8


def load(d):
    man = json.load(open(os.path.join(d, "manifest.json")))
    vocab = json.load(open(os.path.join(d, "vocab.json")))
    dt = {"int32": np.int32, "float32": np.float32, "float64": np.float64}

    def col(key):
        return np.fromfile(os.path.join(d, key + ".bin"), dtype=dt[man["columns"][key]])

    ds = {"vocab": vocab}
    for k in ["users.segment", "users.region", "items.category", "items.brand", "items.price", "items.titleTokens",
              "items.popularity"]:
        ds[k] = col(k)
    for s in ["train", "validation", "test"]:
        ds[s] = {c: col(f"{s}.{c}") for c in ["user", "item", "label"]}
    return ds


class TwoTower(tf.keras.Model):
    def __init__(self, ds, c):
        super().__init__()
        v = ds["vocab"]
        self.seg = tf.constant(ds["users.segment"])
        self.reg = tf.constant(ds["users.region"])
        self.cat = tf.constant(ds["items.category"])
        self.brand = tf.constant(ds["items.brand"])
        self.price = tf.constant(ds["items.price"].reshape(-1, 1))
        self.title = tf.constant(ds["items.titleTokens"].reshape(-1, TITLE_LEN))
        init = lambda: tf.keras.initializers.RandomNormal(0.0, 0.05, seed=c["seed"])  # noqa: E731
        emb = lambda n, d: tf.keras.layers.Embedding(n, d, embeddings_initializer=init())  # noqa: E731
        self.e_user = emb(len(v["users"]), c["embeddingDim"])
        self.e_seg = emb(len(v["segments"]), c["featureDim"])
        self.e_reg = emb(len(v["regions"]), c["featureDim"])
        self.e_item = emb(len(v["items"]), c["embeddingDim"])
        self.e_cat = emb(len(v["categories"]), c["featureDim"])
        self.e_brand = emb(len(v["brands"]), c["featureDim"])
        self.e_tok = emb(len(v["tokens"]), c["featureDim"])
        self.u1 = tf.keras.layers.Dense(c["hiddenUnits"], activation="relu")
        self.u2 = tf.keras.layers.Dense(c["outputDim"])
        self.i1 = tf.keras.layers.Dense(c["hiddenUnits"], activation="relu")
        self.i2 = tf.keras.layers.Dense(c["outputDim"])

    def user_vec(self, u):
        x = tf.concat([self.e_user(u), self.e_seg(tf.gather(self.seg, u)), self.e_reg(tf.gather(self.reg, u))], 1)
        return self.u2(self.u1(x))

    def item_vec(self, i):
        toks = tf.gather(self.title, i)
        mask = tf.cast(tf.not_equal(toks, 0), "float32")
        summed = tf.reduce_sum(self.e_tok(toks) * tf.expand_dims(mask, 2), axis=1)
        mean = summed / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
        x = tf.concat([self.e_item(i), self.e_cat(tf.gather(self.cat, i)), self.e_brand(tf.gather(self.brand, i)),
                       mean, tf.gather(self.price, i)], 1)
        return self.i2(self.i1(x))

    def call(self, inputs):
        u, i = inputs
        return tf.reduce_sum(self.user_vec(u) * self.item_vec(i), axis=1)


def build(ds, c):
    model = TwoTower(ds, c)
    model([np.array([1], np.int32), np.array([1], np.int32)])

    def user_model(users):
        out = [model.user_vec(tf.constant(users[s:s + 4096])).numpy() for s in range(0, len(users), 4096)]
        return np.concatenate(out)

    def item_model(items):
        out = [model.item_vec(tf.constant(items[s:s + 4096])).numpy() for s in range(0, len(items), 4096)]
        return np.concatenate(out)

    return model, user_model, item_model


def examples(ds, c, epoch, max_pos=None):
    tr = ds["train"]
    n_pos = len(tr["user"]) if max_pos is None else min(max_pos, len(tr["user"]))
    per = 1 + c["negativesPerPositive"]
    rng = np.random.default_rng(c["seed"] * 7919 + epoch)
    n_items = len(ds["vocab"]["items"])
    users = np.repeat(tr["user"][:n_pos], per)
    items = np.repeat(tr["item"][:n_pos], per)
    labels = np.repeat(tr["label"][:n_pos], per).astype(np.float32)
    neg = np.ones(len(users), bool)
    neg[::per] = False
    items[neg] = rng.integers(1, n_items, neg.sum())
    labels[neg] = 0.0
    order = rng.permutation(len(users))
    return users[order], items[order], labels[order]


def rank(ds, split, user_model, item_model, max_users=None, k=10):
    n_items = len(ds["vocab"]["items"])
    seen = {}
    for u, i in zip(ds["train"]["user"], ds["train"]["item"]):
        seen.setdefault(int(u), set()).add(int(i))
    rel = {}
    for u, i in zip(ds[split]["user"], ds[split]["item"]):
        if i != 0 and i not in seen.get(int(u), ()):
            rel.setdefault(int(u), set()).add(int(i))
    users = sorted(rel)
    if max_users:
        users = users[:max_users]
    iv = item_model(np.arange(n_items, dtype=np.int32))
    hr = ndcg = 0.0
    for s in range(0, len(users), 512):
        chunk = np.array(users[s:s + 512], dtype=np.int32)
        scores = user_model(chunk) @ iv.T
        scores[:, 0] = -np.inf
        for j, u in enumerate(chunk):
            row = scores[j]
            for i in seen.get(int(u), ()):
                row[i] = -np.inf
            top = np.argpartition(-row, k)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            r = rel[int(u)]
            hits = [p for p, i in enumerate(top) if int(i) in r]
            hr += 1.0 if hits else 0.0
            idcg = sum(1 / math.log2(p + 2) for p in range(min(k, len(r))))
            ndcg += sum(1 / math.log2(p + 2) for p in hits) / idcg
    n = len(users)
    return {"hr10": round(hr / n, 4), "ndcg10": round(ndcg / n, 4), "users": n}


def fit_epoch(model, opt, ds, c, epoch, max_pos=None):
    opt.learning_rate.assign(c["learningRate"] * c["learningRateDecay"] ** epoch)
    u, i, y = examples(ds, c, epoch, max_pos)
    t0 = time.perf_counter()
    h = model.fit([u, i], y, batch_size=c["batchSize"], epochs=1, shuffle=False, verbose=0)
    secs = time.perf_counter() - t0
    return {"epoch": epoch, "loss": float(h.history["loss"][-1]), "seconds": secs, "samples": len(u),
            "samplesPerSec": len(u) / secs}


def main():
    data, spec_file, out = sys.argv[1:4]
    spec = json.load(open(spec_file))
    c = spec["config"]
    ds = load(data)
    tf.keras.utils.set_random_seed(c["seed"])
    loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)

    # Speed: two epochs on speedPositives positives, the second timed.
    model, _, _ = build(ds, c)
    opt = tf.keras.optimizers.Adam(c["learningRate"])
    model.compile(optimizer=opt, loss=loss)
    speed = [fit_epoch(model, opt, ds, c, e, spec["speedPositives"]) for e in range(2)][-1]
    print(f"keras speed: {speed['samplesPerSec']:.0f} samples/s", flush=True)
    if spec.get("speedOnly"):
        json.dump({"framework": f"tensorflow {tf.__version__} CPU",
                   "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                               "inter": tf.config.threading.get_inter_op_parallelism_threads(),
                               "cpus": os.cpu_count()},
                   "speed": {"samples": speed["samples"], "samplesPerSec": speed["samplesPerSec"],
                             "secondsPerEpoch": speed["seconds"], "batchSize": c["batchSize"]}},
                  open(out, "w"), indent=1)
        return

    # Quality: full epochs with early stopping on validation NDCG@10, best weights on the test split.
    model, user_model, item_model = build(ds, c)
    opt = tf.keras.optimizers.Adam(c["learningRate"])
    model.compile(optimizer=opt, loss=loss)
    best, best_w, history = None, None, []
    t0 = time.perf_counter()
    for e in range(c["epochs"]):
        if best is not None and e - best["epoch"] > c["earlyStoppingPatience"]:
            break
        rec = fit_epoch(model, opt, ds, c, e)
        rec.update(rank(ds, "validation", user_model, item_model, max_users=5000))
        history.append(rec)
        print(f"keras epoch {e}: loss {rec['loss']:.4f} val ndcg@10 {rec['ndcg10']:.4f}", flush=True)
        if best is None or rec["ndcg10"] > best["ndcg10"]:
            best, best_w = rec, model.get_weights()
    train_seconds = time.perf_counter() - t0
    model.set_weights(best_w)
    test = rank(ds, "test", user_model, item_model)
    json.dump({
        "framework": f"tensorflow {tf.__version__} (keras {tf.keras.__version__ if hasattr(tf.keras, '__version__') else ''}) CPU",
        "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter": tf.config.threading.get_inter_op_parallelism_threads(), "cpus": os.cpu_count()},
        "speed": {"samples": speed["samples"], "samplesPerSec": speed["samplesPerSec"],
                  "secondsPerEpoch": speed["seconds"], "batchSize": c["batchSize"]},
        "quality": {**test, "bestEpoch": best["epoch"], "epochsRun": len(history), "trainSeconds": round(train_seconds, 1)},
        "history": history,
    }, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
