"""Python peers of bench/quality.ts, run on the same split exported to files: `implicit` ALS, a numpy EASE^R and
recent popularity, with the hyperparameters recflow chose on validation, scored with an independent numpy
implementation of recflow's protocol (test split, whole catalogue ranked, training items excluded, relevant = test
items not seen in training; users without training events are "new" and get the recent-popularity ranking).

    python bench/quality_peer.py SPLIT_DIR OUT_JSON

SPLIT_DIR holds train.csv, test.csv (user,item,label,timestamp; dataset indices) and spec.json (written by
bench/quality.ts). OUT_JSON gets the metrics and the EASE^R scores of a sample of users (for the parity check).
"""
import json
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

DAY_MS = 86_400_000


def main():
    split_dir, out_path = sys.argv[1], sys.argv[2]
    spec = json.load(open(f"{split_dir}/spec.json"))
    U, I = spec["users"], spec["items"]
    tr = pd.read_csv(f"{split_dir}/train.csv")
    te = pd.read_csv(f"{split_dir}/test.csv")
    trained = np.zeros(U, bool)
    trained[tr.user.values] = True
    seen = tr.groupby("user")["item"].apply(lambda s: np.array(sorted(set(s)))).to_dict()
    rel = te.groupby("user")["item"].apply(set).to_dict()
    users = sorted(u for u in rel if len(rel[u] - set(seen.get(u, []))) > 0)

    def evaluate(score_fn):
        rows = []
        for b in range(0, len(users), 256):
            us = np.array(users[b : b + 256])
            S = score_fn(us).astype(np.float64)
            S[:, 0] = -np.inf
            for j, u in enumerate(us):
                s = seen.get(u)
                if s is not None:
                    S[j, s] = -np.inf
                top = np.lexsort((np.arange(I), -S[j]))[:50]  # ties: lower index first, as recflow
                r = rel[u] - set(seen.get(u, []))
                hits = np.array([i in r for i in top])
                dcg = float(np.sum(hits[:10] / np.log2(np.arange(2, 12))))
                idcg = float(np.sum(1 / np.log2(np.arange(2, 2 + min(10, len(r))))))
                rows.append((trained[u], dcg / idcg, float(hits[:10].any()), hits[:50].sum() / len(r)))
        a = np.array(rows, dtype=float)

        def agg(mask):
            if not mask.any():
                return None
            return {"users": int(mask.sum()), "ndcg@10": a[mask, 1].mean(), "hitRate@10": a[mask, 2].mean(),
                    "recall@50": a[mask, 3].mean()}

        return {"overall": agg(np.ones(len(a), bool)), "users:returning": agg(a[:, 0] == 1),
                "users:new": agg(a[:, 0] == 0)}

    # Recent popularity, recflow's formula (window or half-life, ties by all-time popularity).
    pop = np.array(spec["popularity"], dtype=np.float64)
    end = spec["trainEnd"]
    rc = spec["recent"]
    t = tr.timestamp.values
    keep = t < end
    if rc["windowDays"] is not None:
        keep &= t >= end - rc["windowDays"] * DAY_MS
    w = np.ones(len(tr)) if rc["halfLifeDays"] is None else 2.0 ** (-(end - t) / (rc["halfLifeDays"] * DAY_MS))
    counts = np.bincount(tr.item.values[keep], weights=w[keep], minlength=I).astype(np.float64)
    counts[0] = 0
    max_c, max_p = counts[1:].max(), pop[1:].max()
    prior = (counts / max_c if max_c > 0 else 0 * counts) + (0.5 / (max_c + 1)) * pop / max(max_p, 1e-12)
    prior[0] = 0
    out = {"recentPopularity": evaluate(lambda us: np.tile(prior, (len(us), 1)))}

    def with_prior(scores_of):
        def f(us):
            S = scores_of(us)
            S[~trained[us]] = prior
            return S
        return f

    # implicit ALS: confidence 1 + alpha * label given as the matrix (implicit's own alpha left at 1).
    a = spec["als"]
    C = sp.csr_matrix((1 + a["alpha"] * tr.label.values, (tr.user.values, tr.item.values)), shape=(U, I),
                      dtype=np.float32)
    m = AlternatingLeastSquares(factors=a["factors"], regularization=a["regularization"], alpha=1.0,
                                iterations=a["iterations"], random_state=a["seed"], num_threads=1)
    t0 = time.time()
    m.fit(C, show_progress=False)
    als_seconds = time.time() - t0
    uf, itf = np.asarray(m.user_factors), np.asarray(m.item_factors)
    out["implicitAls"] = evaluate(with_prior(lambda us: uf[us] @ itf.T))
    out["implicitAls"]["fitSeconds"] = als_seconds

    # EASE^R in numpy (float64), the same lambda.
    if spec.get("ease"):
        lam = spec["ease"]["lambda"]
        t0 = time.time()
        X = sp.csr_matrix((np.ones(len(tr)), (tr.user.values, tr.item.values)), shape=(U, I))
        X.data[:] = 1
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices(I)] += lam
        P = np.linalg.inv(G)
        B = P / -np.diag(P)
        B[np.diag_indices(I)] = 0
        ease_seconds = time.time() - t0
        out["numpyEase"] = evaluate(with_prior(lambda us: np.asarray(X[us] @ B)))
        out["numpyEase"]["fitSeconds"] = ease_seconds
        sample = [u for u in users if trained[u]][:50]
        out["easeSample"] = {"users": sample, "scores": np.asarray(X[sample] @ B).tolist()}
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main()
