"""The Python peer of the serving bench: FastAPI + onnxruntime serving the SAME bundle (lib/bundle.ts layout) with
the same /v1/recommend contract as serving/app.ts (vocab lookup, popularity fallback, exclude, top-k), one request
per session.run (no batching), as a typical FastAPI model server does.

    python bench/serve_peer.py BUNDLE_DIR PRECISION PORT [THREADS]
"""

import json
import os
import sys
import uuid
from typing import List

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

bundle_dir, precision, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1

manifest = json.load(open(os.path.join(bundle_dir, "bundle.json")))
vocab = json.load(open(os.path.join(bundle_dir, "vocab.json")))
popular_ids = json.load(open(os.path.join(bundle_dir, "popular.json")))
user_index = {u: i for i, u in enumerate(vocab["users"]) if i > 0}
item_ids = vocab["items"]
item_index = {it: i for i, it in enumerate(item_ids) if i > 0}
popular = [item_index[i] for i in popular_ids if i in item_index]

opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(
    os.path.join(bundle_dir, manifest["files"][precision]["recommend"]), opts, providers=["CPUExecutionProvider"]
)
VERSION = "peer"


class RecommendBody(BaseModel):
    userId: str = Field(min_length=1, max_length=128)
    k: int = Field(default=10, ge=1, le=100)
    exclude: List[str] = Field(default_factory=list, max_length=1000)


app = FastAPI()


@app.get("/readyz")
def readyz():
    return {"ready": True}


@app.post("/v1/recommend")
def recommend(body: RecommendBody):
    request_id = str(uuid.uuid4())
    unknown = [i for i in body.exclude if i not in item_index]
    exclude = [item_index[i] for i in body.exclude if i in item_index]
    user = user_index.get(body.userId)
    if user is None:
        ex = set(exclude)
        items = [{"itemId": item_ids[i], "score": None} for i in popular if i not in ex][: body.k]
    else:
        try:
            scores, top = session.run(
                ["scores", "items"],
                {
                    "user": np.array([user], dtype=np.int64),
                    "k": np.array([body.k], dtype=np.int64),
                    "exclude": np.array([exclude], dtype=np.int64).reshape(1, len(exclude)),
                },
            )
        except Exception:  # noqa: BLE001 - hide details from clients
            raise HTTPException(status_code=500, detail="internal error")
        items = [{"itemId": item_ids[int(i)], "score": float(s)} for i, s in zip(top[0], scores[0])]
    return {
        "requestId": request_id,
        "model": {"version": VERSION, "variant": "stable", "precision": precision},
        "userKnown": user is not None,
        "fallback": None if user is not None else "popularity",
        "items": items,
        "unknownItems": unknown,
    }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
