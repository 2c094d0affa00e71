"""PyTorch CPU twin of recflow's search fine-tune step (kinds/search/fine-tune.ts), for bench/search.ts.

The same model (BERT from the same model.safetensors: embeddings + LayerNorm, post-LN layers with GELU (erf), mean
pooling over the mask, L2 normalisation; no dropout), the same batches (token ids written by bench/search.ts), the
same loss (in-batch softmax over [positives; hard negatives], scale 20), the same optimizer (AdamW, eps 1e-6, weight
decay 0.01 except biases and LayerNorm), the same trainable layers; with `--cache` the frozen layers' outputs are
computed once before timing, as recflow does. Written as a PyTorch engineer would: nn.Linear, F.layer_norm,
F.scaled_dot_product_attention, torch.optim.AdamW (foreach).

    python bench/search_train_peer.py --model DIR --batches batches.json --trainable 2 --cache --threads 1

Prints one JSON line: threads, steps, median seconds per step (wall and process CPU), samples/s, first-step loss.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


class Layer(torch.nn.Module):
    def __init__(self, h, heads, inter, eps):
        super().__init__()
        self.h, self.heads, self.eps = h, heads, eps
        self.q = torch.nn.Linear(h, h)
        self.k = torch.nn.Linear(h, h)
        self.v = torch.nn.Linear(h, h)
        self.o = torch.nn.Linear(h, h)
        self.ln1 = torch.nn.LayerNorm(h, eps=eps)
        self.f1 = torch.nn.Linear(h, inter)
        self.f2 = torch.nn.Linear(inter, h)
        self.ln2 = torch.nn.LayerNorm(h, eps=eps)

    def forward(self, x, bias):
        b, t, _ = x.shape
        dh = self.h // self.heads

        def split(y):
            return y.view(b, t, self.heads, dh).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=bias)
        x = self.ln1(x + self.o(ctx.transpose(1, 2).reshape(b, t, self.h)))
        return self.ln2(x + self.f2(F.gelu(self.f1(x))))


class Bert(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg['hidden_size']
        self.word = torch.nn.Embedding(cfg['vocab_size'], h)
        self.pos = torch.nn.Embedding(cfg['max_position_embeddings'], h)
        self.token_type = torch.nn.Embedding(cfg['type_vocab_size'], h)
        self.ln = torch.nn.LayerNorm(h, eps=cfg['layer_norm_eps'])
        self.layers = torch.nn.ModuleList(
            [Layer(h, cfg['num_attention_heads'], cfg['intermediate_size'], cfg['layer_norm_eps'])
             for _ in range(cfg['num_hidden_layers'])])

    def load(self, w):
        w = {k[5:] if k.startswith('bert.') else k: v for k, v in w.items()}
        m = {'word.weight': 'embeddings.word_embeddings.weight', 'pos.weight': 'embeddings.position_embeddings.weight',
             'token_type.weight': 'embeddings.token_type_embeddings.weight', 'ln.weight': 'embeddings.LayerNorm.weight',
             'ln.bias': 'embeddings.LayerNorm.bias'}
        names = {'q': 'attention.self.query', 'k': 'attention.self.key', 'v': 'attention.self.value',
                 'o': 'attention.output.dense', 'ln1': 'attention.output.LayerNorm', 'f1': 'intermediate.dense',
                 'f2': 'output.dense', 'ln2': 'output.LayerNorm'}
        for i in range(len(self.layers)):
            for ours, theirs in names.items():
                for p in ('weight', 'bias'):
                    m[f'layers.{i}.{ours}.{p}'] = f'encoder.layer.{i}.{theirs}.{p}'
        self.load_state_dict({k: w[v] for k, v in m.items()})

    def embed(self, ids):
        t = ids.shape[1]
        return self.ln(self.word(ids) + self.pos.weight[:t] + self.token_type.weight[0])

    def run(self, x, mask, start=0):
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).to(x.dtype)
        for layer in self.layers[start:]:
            x = layer(x, bias)
        return x


def pool(x, mask):
    m = mask.unsqueeze(-1)
    e = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(e, p=2, dim=1, eps=1e-12)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--batches', required=True)
    ap.add_argument('--trainable', type=int, default=2)
    ap.add_argument('--cache', action='store_true')
    ap.add_argument('--train-embeddings', action='store_true')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--lr', type=float, default=5e-5)
    ap.add_argument('--scale', type=float, default=20.0)
    ap.add_argument('--warmup-steps', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(f'{a.model}/config.json') as f:
        cfg = json.load(f)
    with open(a.batches) as f:
        batches = json.load(f)['batches']
    model = Bert(cfg)
    model.load(load_file(f'{a.model}/model.safetensors'))
    n = cfg['num_hidden_layers']
    first = n - a.trainable
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers[first:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    if first == 0 and a.train_embeddings:
        for m in (model.word, model.pos, model.token_type, model.ln):
            for p in m.parameters():
                p.requires_grad_(True)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith('bias') or '.ln' in name or name.startswith('ln.') else decay).append(p)
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=a.lr, eps=1e-6)

    def tensors(side):
        return torch.tensor(side['ids'], dtype=torch.long), torch.tensor(side['mask'], dtype=torch.float32)

    prepared = []
    for b in batches:
        (qi, qm), (di, dm) = tensors(b['q']), tensors(b['d'])
        if a.cache and first > 0:
            with torch.no_grad():
                # The frozen layers [0, first), once.
                qh = model.embed(qi)
                dh = model.embed(di)
                bias_q = ((1.0 - qm[:, None, None, :]) * -1e9)
                bias_d = ((1.0 - dm[:, None, None, :]) * -1e9)
                for layer in model.layers[:first]:
                    qh = layer(qh, bias_q)
                    dh = layer(dh, bias_d)
            prepared.append((qh, qm, dh, dm))
        else:
            prepared.append((qi, qm, di, dm))

    def side(x, mask):
        if a.cache and first > 0:
            return pool(model.run(x, mask, first), mask)
        return pool(model.run(model.embed(x), mask, 0), mask)

    walls, cpus, first_loss = [], [], None
    for s, (q, qm, d, dm) in enumerate(prepared):
        w0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        qe, de = side(q, qm), side(d, dm)
        logits = a.scale * qe @ de.T
        loss = F.cross_entropy(logits, torch.arange(qe.shape[0]))
        loss.backward()
        opt.step()
        w1, c1 = time.perf_counter(), time.process_time()
        if first_loss is None:
            first_loss = loss.item()
        if s >= a.warmup_steps:
            walls.append(w1 - w0)
            cpus.append(c1 - c0)
    bsz = len(batches[0]['q']['ids'])
    wall = statistics.median(walls)
    print(json.dumps({'threads': a.threads, 'steps': len(walls), 'secondsPerStep': wall,
                      'cpuSecondsPerStep': statistics.median(cpus), 'samplesPerSec': bsz / wall,
                      'firstLoss': first_loss, 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
