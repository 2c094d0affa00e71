"""pandas peer of bench/preprocess.ts: the same steps on the same shop export, timed in one process.

    $RECFLOW_BENCH_PYTHON bench/preprocess_peer.py SHOP_DIR OUT_DIR

Steps (as lib/data/validate.ts + lib/data/preprocess.ts): read the three CSVs as text; events: drop empty
required values, unknown event types, unparseable timestamps or ones more than a day in the future, unknown
user/item ids; exact duplicates dropped; sort by time; users and items: fill missing categoricals with <unk>, price
outliers and missing prices to the median, log1p, standardize; vocabularies by frequency; title tokens (first 8);
time split 80/10/10 by event quantiles; labels from event types; one row per (split, user, item) with the max label
and last time; popularity from train; columns written as raw little-endian files. Prints one JSON line.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd

LABELS = {"view": 0.25, "click": 0.5, "add_to_cart": 0.75, "purchase": 1.0}
UNK = "<unk>"


def vocab(series):
    vc = series[series.notna() & (series != "")].value_counts()
    vc = vc.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    return [UNK] + list(vc.index)


def main(shop, out):
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    users = pd.read_csv(os.path.join(shop, "users.csv"), dtype=str, keep_default_na=False)
    items = pd.read_csv(os.path.join(shop, "items.csv"), dtype=str, keep_default_na=False)
    ev = pd.read_csv(os.path.join(shop, "events.csv"), dtype=str, keep_default_na=False)
    n_in = len(ev)
    # validation + cleaning of events
    ev = ev[(ev.user_id != "") & (ev.item_id != "") & (ev.event_type != "") & (ev.timestamp != "")]
    ev = ev[ev.event_type.isin(LABELS.keys())]
    ts = pd.to_datetime(ev.timestamp, utc=True, format="ISO8601", errors="coerce")
    ms = (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)
    ev = ev.assign(ts=ms)
    ev = ev[ms.notna().values]
    ev = ev.assign(ts=ev.ts.astype(np.int64))
    # recflow's default policy: any past date (no floor), at most one day in the future
    hi = int(time.time() * 1000) + 86_400_000
    ev = ev[ev.ts <= hi]
    user_ids = users.user_id[users.user_id != ""].drop_duplicates()
    item_ids = items.item_id[items.item_id != ""].drop_duplicates()
    ev = ev[ev.user_id.isin(user_ids) & ev.item_id.isin(item_ids)]
    ev = ev.drop_duplicates(subset=["user_id", "item_id", "event_type", "ts"])
    uvocab = [UNK] + list(user_ids)
    ivocab = [UNK] + list(item_ids)
    uidx = pd.Series(np.arange(1, len(uvocab), dtype=np.int32), index=user_ids.values)
    iidx = pd.Series(np.arange(1, len(ivocab), dtype=np.int32), index=item_ids.values)
    ev = ev.assign(u=uidx.reindex(ev.user_id.values).values, i=iidx.reindex(ev.item_id.values).values)
    ev = ev.assign(label=ev.event_type.map(LABELS).astype(np.float32))
    ev = ev.sort_values(["ts", "u", "i", "label"], kind="stable")
    # users
    users = users[users.user_id.isin(user_ids)].drop_duplicates("user_id")
    seg_v = vocab(users.segment)
    reg_v = vocab(users.region)
    seg = users.segment.replace("", UNK).map({v: k for k, v in enumerate(seg_v)}).fillna(0).astype(np.int32)
    reg = users.region.replace("", UNK).map({v: k for k, v in enumerate(reg_v)}).fillna(0).astype(np.int32)
    # items
    items = items[items.item_id.isin(item_ids)].drop_duplicates("item_id")
    price = pd.to_numeric(items.price, errors="coerce")
    price = price.where((price > 0) & (price <= 10_000))
    price = price.fillna(price.median())
    lp = np.log1p(price)
    price_scaled = ((lp - lp.mean()) / (lp.std() or 1.0)).astype(np.float32)
    cat_v = vocab(items.category)
    brand_v = vocab(items.brand)
    cat = items.category.replace("", UNK).map({v: k for k, v in enumerate(cat_v)}).fillna(0).astype(np.int32)
    brand = items.brand.replace("", UNK).map({v: k for k, v in enumerate(brand_v)}).fillna(0).astype(np.int32)
    toks = items.title.str.lower().str.findall(r"[^\W_]+")
    tok_counts = toks.explode().dropna().value_counts()
    tok_counts = tok_counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    tok_v = [UNK] + list(tok_counts.index[:19_999])
    tok_map = {v: k for k, v in enumerate(tok_v)}
    title = np.zeros((len(ivocab), 8), dtype=np.int32)
    for r, ts_ in enumerate(toks.values, start=1):
        for j, w in enumerate(ts_[:8]):
            title[r, j] = tok_map.get(w, 0)
    # split
    m = len(ev)
    tsv = ev.ts.values
    train_end = tsv[min(m - 1, int(0.8 * m))]
    val_end = tsv[min(m - 1, int(0.9 * m))]
    split = np.where(tsv < train_end, 0, np.where(tsv < val_end, 1, 2))
    ev = ev.assign(split=split)
    pop = np.bincount(ev.i.values[split == 0], minlength=len(ivocab)).astype(np.float32)
    agg = ev.groupby(["split", "u", "i"], sort=False).agg(label=("label", "max"), ts=("ts", "last")).reset_index()
    rows = {}
    for k, name in enumerate(["train", "validation", "test"]):
        part = agg[agg.split == k].sort_values("ts", kind="stable")
        rows[name] = len(part)
        part.u.values.astype(np.int32).tofile(os.path.join(out, f"{name}.user.bin"))
        part.i.values.astype(np.int32).tofile(os.path.join(out, f"{name}.item.bin"))
        part.label.values.astype(np.float32).tofile(os.path.join(out, f"{name}.label.bin"))
        part.ts.values.astype(np.float64).tofile(os.path.join(out, f"{name}.timestamp.bin"))
    np.concatenate([[0], seg.values]).astype(np.int32).tofile(os.path.join(out, "users.segment.bin"))
    np.concatenate([[0], reg.values]).astype(np.int32).tofile(os.path.join(out, "users.region.bin"))
    np.concatenate([[0], cat.values]).astype(np.int32).tofile(os.path.join(out, "items.category.bin"))
    np.concatenate([[0], brand.values]).astype(np.int32).tofile(os.path.join(out, "items.brand.bin"))
    np.concatenate([[0], price_scaled.values]).astype(np.float32).tofile(os.path.join(out, "items.price.bin"))
    title.tofile(os.path.join(out, "items.titleTokens.bin"))
    pop.tofile(os.path.join(out, "items.popularity.bin"))
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump({"users": uvocab, "items": ivocab, "categories": cat_v, "brands": brand_v,
                   "segments": seg_v, "regions": reg_v, "tokens": tok_v}, f)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": f"pandas {pd.__version__}", "seconds": seconds, "inputRows": n_in,
                      "rowsPerSecond": n_in / seconds, "peakRssMB": peak_mb, "rows": rows, "events": int(m)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
