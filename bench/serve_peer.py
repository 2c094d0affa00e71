"""The Python peer of the serving bench, written as a competent FastAPI engineer would: an `async def` handler,
pydantic validation, orjson-encoded responses, uvicorn with uvloop and httptools, onnxruntime with one intra-op thread, one
request per session.run. It serves the SAME bundle (lib/bundle.ts layout) with the same /v1/recommend contract as
serving/routes/recommend.ts: vocab lookup, popularity fallback, `exclude`, the user's stored history (history.bin)
left out unless `includeSeen`, top-k.

    PEER_BUNDLE=DIR PEER_PRECISION=fp32 python -m uvicorn serve_peer:app --app-dir bench \
        --port PORT --workers N --loop uvloop --http httptools --no-access-log --log-level warning
"""

import json
import os
import uuid
from typing import List

import numpy as np
import onnxruntime as ort
import orjson
from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

bundle_dir = os.environ["PEER_BUNDLE"]
precision = os.environ.get("PEER_PRECISION", "fp32")
threads = int(os.environ.get("PEER_THREADS", "1"))

manifest = json.load(open(os.path.join(bundle_dir, "bundle.json")))
vocab = json.load(open(os.path.join(bundle_dir, "vocab.json")))
popular_ids = json.load(open(os.path.join(bundle_dir, "popular.json")))
user_index = {u: i for i, u in enumerate(vocab["users"]) if i > 0}
item_ids = vocab["items"]
item_index = {it: i for i, it in enumerate(item_ids) if i > 0}
popular = [item_index[i] for i in popular_ids if i in item_index]

# history.bin (lib/onnx/bundle-io.ts): 20-byte header (magic, version, users, maxPerUser, nnz as uint32 LE), then
# users + 1 uint32 offsets, then nnz int32 item indices.
offsets = np.zeros(len(vocab["users"]) + 1, dtype=np.uint32)
hist_items = np.zeros(0, dtype=np.int32)
if manifest.get("history"):
    raw = open(os.path.join(bundle_dir, manifest["history"]["file"]), "rb").read()
    users, nnz = int.from_bytes(raw[8:12], "little"), int.from_bytes(raw[16:20], "little")
    offsets = np.frombuffer(raw, dtype=np.uint32, count=users + 1, offset=20)
    hist_items = np.frombuffer(raw, dtype=np.int32, count=nnz, offset=20 + 4 * (users + 1))

opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(
    os.path.join(bundle_dir, manifest["files"][precision]["recommend"]), opts, providers=["CPUExecutionProvider"]
)
K_INPUT = np.zeros(1, dtype=np.int64)
# Graphs with a `history` input (two-tower v3) get the user's stored history, as recflow's serving feeds it: the last
# L items, 0-padded on the left, when the width is static, else all of them.
HISTORY = next((i for i in session.get_inputs() if i.name == "history"), None)
HISTORY_WIDTH = HISTORY.shape[1] if HISTORY is not None and isinstance(HISTORY.shape[1], int) else None


def history_feed(user):
    h = hist_items[offsets[user] : offsets[user + 1]].astype(np.int64) if user is not None else np.zeros(0, np.int64)
    if HISTORY_WIDTH is not None:
        h = np.concatenate([np.zeros(max(0, HISTORY_WIDTH - len(h)), np.int64), h[-HISTORY_WIDTH:]])
    return h.reshape(1, len(h))


class RecommendBody(BaseModel):
    userId: str = Field(min_length=1, max_length=128)
    k: int = Field(default=10, ge=1, le=100)
    exclude: List[str] = Field(default_factory=list, max_length=1000)
    includeSeen: bool = False


app = FastAPI()


def json_response(payload: dict) -> Response:
    # orjson straight to bytes: no response-model validation on the hot path.
    return Response(content=orjson.dumps(payload), media_type="application/json")


@app.get("/readyz")
async def readyz():
    return json_response({"ready": True})


@app.post("/v1/recommend")
async def recommend(body: RecommendBody):
    unknown = [i for i in body.exclude if i not in item_index]
    exclude = {item_index[i] for i in body.exclude if i in item_index}
    user = user_index.get(body.userId)
    seen = 0
    if user is not None and not body.includeSeen:
        h = hist_items[offsets[user] : offsets[user + 1]]
        seen = len(set(h.tolist()))
        exclude.update(h.tolist())
    if user is None:
        items = [{"itemId": item_ids[i], "score": None} for i in popular if i not in exclude][: body.k]
    else:
        ex = np.fromiter(exclude, dtype=np.int64, count=len(exclude)).reshape(1, len(exclude))
        K_INPUT[0] = body.k
        feeds = {"user": np.array([user], dtype=np.int64), "k": K_INPUT, "exclude": ex}
        if HISTORY is not None:
            feeds["history"] = history_feed(user)
        scores, top = session.run(["scores", "items"], feeds)
        items = [
            {"itemId": item_ids[i], "score": float(s)}
            for i, s in zip(top[0].tolist(), scores[0].tolist())
            if i not in exclude
        ]
    return json_response({
        "requestId": str(uuid.uuid4()),
        "model": {"version": "peer", "variant": "stable", "precision": precision},
        "userKnown": user is not None,
        "fallback": None if user is not None else "popularity",
        "items": items,
        "unknownItems": unknown,
        "seenExcluded": seen,
    })
