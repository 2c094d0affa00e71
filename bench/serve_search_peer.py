"""The Python peer of the search serving bench, written as a competent FastAPI engineer would: an `async def` handler,
pydantic validation, orjson-encoded responses, uvicorn with uvloop and httptools, Hugging Face `tokenizers` (Rust) and
onnxruntime with one intra-op thread, one query per session.run. It serves the SAME search bundle (lib/bundle.ts,
kinds/search/bundle.ts layout: the variant the precision serves, its search graph with the item index inside, the
tokenizer, items.json) with the same /v1/search contract as serving/routes/search.ts (query 1..512 characters, not only
spaces; k 1..100; optional userId; items with scores; truncated). It issues no feedback token (recflow signs one with
HMAC-SHA256 per response: a cost the peer does not pay).

    PEER_BUNDLE=DIR PEER_PRECISION=int8 python -m uvicorn serve_search_peer:app --app-dir bench \
        --port PORT --workers N --loop uvloop --http httptools --no-access-log --log-level warning
"""

import json
import os
import uuid
from typing import Optional

import numpy as np
import onnxruntime as ort
import orjson
from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field
from tokenizers import Tokenizer

bundle_dir = os.environ["PEER_BUNDLE"]
precision = os.environ.get("PEER_PRECISION", "int8")
threads = int(os.environ.get("PEER_THREADS", "1"))

manifest = json.load(open(os.path.join(bundle_dir, "bundle.json")))
search = manifest["search"]
variant = search["variants"][search["serves"][precision]]
item_ids = json.load(open(os.path.join(bundle_dir, search["itemsFile"])))["ids"]
n_items = len(item_ids)

tokenizer = Tokenizer.from_file(os.path.join(bundle_dir, variant["model"], "tokenizer.json"))
tokenizer.no_padding()
tokenizer.enable_truncation(max_length=search["queryMaxLength"])

opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(
    os.path.join(bundle_dir, variant["files"]["search"]), opts, providers=["CPUExecutionProvider"]
)
K_INPUT = np.zeros(1, dtype=np.int64)


class SearchBody(BaseModel):
    query: str = Field(min_length=1, max_length=512)
    k: int = Field(default=10, ge=1, le=100)
    userId: Optional[str] = Field(default=None, min_length=1, max_length=128)


app = FastAPI()


def json_response(payload: dict) -> Response:
    # orjson straight to bytes: no response-model validation on the hot path.
    return Response(content=orjson.dumps(payload), media_type="application/json")


@app.get("/readyz")
async def readyz():
    return json_response({"ready": True})


@app.post("/v1/search")
async def search_route(body: SearchBody):
    if not body.query.strip():
        raise HTTPException(status_code=400, detail="body/query must contain a non-space character")
    enc = tokenizer.encode(body.query)
    K_INPUT[0] = min(body.k, n_items)
    scores, rows = session.run(
        ["scores", "indices"],
        {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "k": K_INPUT,
        },
    )
    return json_response({
        "requestId": str(uuid.uuid4()),
        "model": {"version": "peer", "variant": "stable", "precision": precision},
        "items": [{"itemId": item_ids[r], "score": float(s)} for r, s in zip(rows[0].tolist(), scores[0].tolist())],
        "truncated": len(enc.overflowing) > 0,
    })
