"""Python peer of bench/quantize.ts: onnxruntime's own `quantize_dynamic` on the SAME fp32 files, then latency and
score deltas of every variant, measured with onnxruntime's Python API (1 thread).

Usage: quantize_peer.py <work dir>   (the TS side wrote score.fp32.onnx, score.int8.onnx, recommend.*.onnx, pairs.bin,
users.bin there). Writes peer.json into the work dir.
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

work = sys.argv[1]
out = {'onnxruntime': ort.__version__, 'variants': {}}


def path(name):
    return os.path.join(work, name)


# ORT's dynamic quantization of the same fp32 graphs: default settings (per-tensor int8 weights) and per-channel
# with reduce_range (7-bit weights, what ORT recommends on x86 without VNNI).
t0 = time.time()
for kind in ('score', 'recommend'):
    quantize_dynamic(path(f'{kind}.fp32.onnx'), path(f'{kind}.ort_int8.onnx'), weight_type=QuantType.QInt8)
    quantize_dynamic(path(f'{kind}.fp32.onnx'), path(f'{kind}.ort_int8_pc.onnx'), weight_type=QuantType.QInt8,
                     per_channel=True, reduce_range=True)
out['quantizeSeconds'] = (time.time() - t0) / 4

pairs = np.fromfile(path('pairs.bin'), dtype=np.int64).reshape(-1, 2)
users = np.fromfile(path('users.bin'), dtype=np.int64)


def session(file):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(file, so, providers=['CPUExecutionProvider'])


def timed(fn, budget_s=1.5, max_runs=2000):
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_runs and (time.perf_counter() - start) < budget_s:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return {'medianMs': 1000 * times[len(times) // 2], 'p99Ms': 1000 * times[min(len(times) - 1, int(0.99 * len(times)))],
            'runs': len(times)}


ref_scores = None
ref_top = None
for variant in ('fp32', 'int8', 'ort_int8', 'ort_int8_pc'):
    score = session(path(f'score.{variant}.onnx'))
    rec = session(path(f'recommend.{variant}.onnx'))
    v = {'scoreBytes': os.path.getsize(path(f'score.{variant}.onnx')),
         'recommendBytes': os.path.getsize(path(f'recommend.{variant}.onnx')), 'score': {}, 'recommend': {}}
    for b in (1, 256, 4096):
        feed = {'user': pairs[:b, 0].copy(), 'items': pairs[:b, 1:2].copy(), 'history': np.zeros((b, 0), dtype=np.int64)}
        v['score'][f'batch{b}'] = timed(lambda: score.run(None, feed))
    for b in (1, 256):
        feed = {'user': users[:b].copy(), 'k': np.array([10], dtype=np.int64), 'exclude': np.zeros((b, 0), dtype=np.int64),
                'history': np.zeros((b, 0), dtype=np.int64)}
        v['recommend'][f'batch{b}'] = timed(lambda: rec.run(None, feed), max_runs=500)
    s = score.run(None, {'user': pairs[:, 0].copy(), 'items': pairs[:, 1:2].copy(),
                         'history': np.zeros((len(pairs), 0), dtype=np.int64)})[0].ravel()
    top = rec.run(None, {'user': users.copy(), 'k': np.array([10], dtype=np.int64),
                         'exclude': np.zeros((len(users), 0), dtype=np.int64),
                         'history': np.zeros((len(users), 0), dtype=np.int64)})[1]
    if variant == 'fp32':
        ref_scores, ref_top = s, top
    d = np.abs(s - ref_scores)
    v['scoreDelta'] = {'max': float(d.max()), 'mean': float(d.mean()), 'p99': float(np.quantile(d, 0.99))}
    v['top10Overlap'] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top)]))
    out['variants'][variant] = v
    print(variant, json.dumps(v), flush=True)

with open(path('peer.json'), 'w') as f:
    json.dump(out, f, indent=2)
