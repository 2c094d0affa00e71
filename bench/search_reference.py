"""Reference fixtures for the search encoder (kinds/search), computed independently of the TypeScript code.

Run through scripts/make-search-fixtures.mjs (it picks the Python from RECFLOW_BENCH_PYTHON and the model folder from
RECFLOW_BASE_MODEL or .tools/models/all-MiniLM-L6-v2), or directly:

    python bench/search_reference.py --model .tools/models/all-MiniLM-L6-v2 --out test/fixtures/search

Needs numpy, scipy, safetensors and tokenizers (Hugging Face's Rust tokenizer, Python binding).

Writes:
- tokenizer.json: a few hundred product-like strings (accents, CJK, emoji, numbers, long titles, literal special
  tokens, control characters, other languages) and their token ids from Python `tokenizers`, untruncated (max 512)
  and truncated to 24 tokens;
- embeddings.json: about 20 strings, their ids and their sentence embeddings from a float64 numpy forward of the
  BERT encoder (embeddings + LayerNorm, self-attention, GELU (erf) FFN, post-LayerNorm, mean pooling over the mask,
  L2 normalisation: what sentence-transformers' Transformer, Pooling(mean) and Normalize modules compute). When
  sentence-transformers is importable, its embeddings are compared too and the max |delta| is recorded.
"""
import argparse
import hashlib
import json
import os
import random

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

HARD = [
    '',
    '   ',
    '!!!',
    '---',
    'Crème brûlée ramekins (set of 4)',
    'Café au lait mug — 350 ml',
    'Jalapeño hot sauce, extra picante',
    'Ångström precision scale 0.01g',
    'naïve façade poster',
    "Señor Frog's sombrero",
    'Mötley Crüe vintage t-shirt',
    "Zoë's organic extra-virgin olive oil",
    'Fußball Straße ß groß',
    'ÉCOLE MAISON DÉCOR Ü Ö Ä',
    'Ørsted ærø Łódź Český Dvůr',
    '抹茶 matcha green tea powder 100g',
    '日本製 包丁 chef knife 21cm',
    '한국 화장품 sheet mask 10매',
    '中文测试手机壳 iPhone 15 Pro Max',
    '运动鞋 男款 跑步',
    'ランニングシューズ レディース',
    '🔥 hot deal 🔥 wireless earbuds',
    '❤️ heart necklace gift for her',
    '👟 sneakers 👟 size 42',
    '🇫🇷 flag 🇯🇵 flag',
    'family 👨‍👩‍👧‍👦 pack',
    '4K UHD 55" smart TV',
    '3.5mm audio jack to USB-C adapter',
    '1/2 inch drive socket set',
    '100% cotton bath towels',
    'only $19.99 (was $29.99)',
    '2x AA batteries + 4x AAA',
    '12-pack sparkling water 330ml',
    '1,000 pcs jigsaw puzzle',
    'Model #A1234-XZ/99',
    '0.75 L stainless steel bottle',
    '[CLS] special token in text [SEP]',
    '[MASK] mystery box',
    '[cls] lowercase is not special',
    '[UNK] [PAD] tokens',
    'tab\tseparated\tfields',
    'new\nline in title',
    'null \u0000 byte',
    'zero\u200bwidth space',
    'no\u00a0break space',
    'windows\r\nline end',
    'bell \u0007 char',
    'soft\u00adhyphen',
    'bidi \u202e override',
    'escape \u001b[31m red',
    'zapatillas de running para mujer',
    'chaussures de course légères',
    'Laufschuhe für Herren, wasserdicht',
    'scarpe da corsa uomo',
    'кроссовки мужские для бега',
    'حذاء رياضي للرجال',
    'רב-תכליתי סכין',
    'ρούχα για τρέξιμο',
    'जूते पुरुषों के लिए',
    'รองเท้าวิ่ง',
    'crimson trainers',
    'red sneakers',
    'snekers runing shoos',
    'blu denim jaket',
    'XL',
    'cotton',
    'Apple',
    'a',
    'the',
    'supercalifragilisticexpialidocious',
    'antidisestablishmentarianism-resistant waterproofing spray',
    'Ultra-Lightweight Breathable Mesh Running Shoes for Men and Women, Non-Slip Rubber Sole, Cushioned Insole, '
    'Perfect for Gym, Jogging, Walking, Tennis and Everyday Casual Wear, Available in Black, White, Navy Blue, Grey, '
    'Crimson Red and Forest Green, Sizes 5 to 13 (US), Free Returns Within 30 Days',
    'Professional 15-Piece Kitchen Knife Set with Block, German High-Carbon Stainless Steel, Ergonomic Handles, '
    'Built-in Sharpener, Dishwasher Safe, Lifetime Warranty — Chef, Bread, Carving, Santoku, Utility, Paring, and '
    'Six Steak Knives plus Kitchen Shears',
    'HDMI 2.1 cable 8K@60Hz 4K@120Hz 48Gbps eARC HDR10+ Dolby Vision 2m/6.6ft braided nylon gold-plated',
]

BRANDS = ['Nike', 'Adidas', 'IKEA', 'Sony', 'Bosch', 'Levi\'s', 'Le Creuset', 'L\'Oréal', 'Dr. Martens', 'H&M',
          'Muji', 'Uniqlo', 'Samsung', 'Philips', 'Zara', 'Patagonia', 'The North Face', 'Crocs', 'Lego', 'Dyson']
PRODUCTS = ['running shoes', 'trainers', 'sneakers', 'rain jacket', 'wool sweater', 'coffee maker', 'frying pan',
            'desk lamp', 'office chair', 'yoga mat', 'backpack', 'headphones', 'phone case', 'bed sheets', 'sofa',
            't-shirt', 'jeans', 'hiking boots', 'blender', 'vacuum cleaner', 'electric toothbrush', 'water bottle']
COLOURS = ['red', 'crimson', 'navy', 'sky blue', 'off-white', 'charcoal', 'olive green', 'beige', 'rosé', 'burgundy',
           'neon yellow', 'matte black']
MATERIALS = ['cotton', 'merino wool', 'leather', 'faux-leather', 'stainless steel', 'bamboo', 'recycled polyester',
             'cast iron', 'silicone', 'linen']
SIZES = ['XS', 'S', 'M', 'L', 'XL', 'XXL', 'size 9', 'EU 42', '32x34', '2-pack', '1.5 L', '10"', '180 x 200 cm']
NOISE = ['', ' 🔥', ' (new)', ' - sale!', ' №1', ' ™', ' ®', ' ½ price', ' x2', ' – free shipping', ' 限定', ' édition']


def product_strings(n, seed=20261201):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rnd.choice(BRANDS), rnd.choice(COLOURS), rnd.choice(MATERIALS), rnd.choice(PRODUCTS)]
        if rnd.random() < 0.6:
            parts.append(rnd.choice(SIZES))
        rnd.shuffle(parts) if rnd.random() < 0.2 else None
        s = ' '.join(parts) + rnd.choice(NOISE)
        if rnd.random() < 0.15:
            s = s.upper()
        if rnd.random() < 0.1:
            s = s.replace('e', '3').replace('o', '0')
        out.append(s)
    return out


EMBED = [
    'red running shoes',
    'crimson trainers for men',
    'Nike Air Zoom Pegasus 40 running shoes, size 10.5',
    'stainless steel water bottle 750 ml',
    'Crème brûlée ramekins (set of 4)',
    '抹茶 matcha green tea powder',
    '🔥 wireless earbuds 🔥',
    'merino wool sweater navy XL',
    'cast iron frying pan 28cm',
    'zapatillas de running para mujer',
    'waterproof hiking boots',
    'ergonomic office chair with lumbar support',
    'a',
    '[CLS] literal token',
    'bed sheets 100% cotton king size',
    'kid\'s lego set',
    'tab\tseparated\ttitle',
    'Professional 15-Piece Kitchen Knife Set with Block, German High-Carbon Stainless Steel, Ergonomic Handles, '
    'Built-in Sharpener, Dishwasher Safe, Lifetime Warranty',
    'cheap headphones',
    'dyson vacuum cleaner',
]


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def forward(w, cfg, ids):
    """One sequence (no padding), float64: the sentence embedding (mean pooled, L2-normalised)."""
    H = cfg['hidden_size']
    nh = cfg['num_attention_heads']
    dh = H // nh
    eps = cfg['layer_norm_eps']
    T = len(ids)
    p = {k: v.astype(np.float64) for k, v in w.items() if v.dtype != np.int64}
    x = p['embeddings.word_embeddings.weight'][ids] + p['embeddings.position_embeddings.weight'][:T] \
        + p['embeddings.token_type_embeddings.weight'][0]
    x = layer_norm(x, p['embeddings.LayerNorm.weight'], p['embeddings.LayerNorm.bias'], eps)
    for i in range(cfg['num_hidden_layers']):
        pre = f'encoder.layer.{i}.'

        def lin(name, h):
            return h @ p[pre + name + '.weight'].T + p[pre + name + '.bias']

        q = lin('attention.self.query', x).reshape(T, nh, dh).transpose(1, 0, 2)
        k = lin('attention.self.key', x).reshape(T, nh, dh).transpose(1, 0, 2)
        v = lin('attention.self.value', x).reshape(T, nh, dh).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(dh)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(T, H)
        x = layer_norm(x + lin('attention.output.dense', ctx), p[pre + 'attention.output.LayerNorm.weight'],
                       p[pre + 'attention.output.LayerNorm.bias'], eps)
        h = lin('intermediate.dense', x)
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        x = layer_norm(x + lin('output.dense', h), p[pre + 'output.LayerNorm.weight'], p[pre + 'output.LayerNorm.bias'],
                       eps)
    e = x.mean(0)
    return e / max(np.linalg.norm(e), 1e-12)


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--products', type=int, default=240)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tok_path = os.path.join(a.model, 'tokenizer.json')

    tok = Tokenizer.from_file(tok_path)
    tok.no_padding()
    texts = HARD + product_strings(a.products)
    tok.enable_truncation(max_length=512)
    full = [e.ids for e in tok.encode_batch(texts)]
    tok.enable_truncation(max_length=24)
    short = [e.ids for e in tok.encode_batch(texts)]
    import tokenizers
    with open(os.path.join(a.out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump({
            'generator': 'bench/search_reference.py',
            'tokenizers': tokenizers.__version__,
            'tokenizerSha256': sha256(tok_path),
            'truncatedLength': 24,
            'cases': [{'text': t, 'ids': i, 'truncated': s} for t, i, s in zip(texts, full, short)],
        }, f, ensure_ascii=False, separators=(',', ':'))

    with open(os.path.join(a.model, 'config.json')) as f:
        cfg = json.load(f)
    w = load_file(os.path.join(a.model, 'model.safetensors'))
    w = {k[5:] if k.startswith('bert.') else k: v for k, v in w.items()}
    tok.enable_truncation(max_length=128)
    ids = [e.ids for e in tok.encode_batch(EMBED)]
    emb = [forward(w, cfg, np.array(i)) for i in ids]
    result = {
        'generator': 'bench/search_reference.py (numpy float64 forward)',
        'modelSha256': sha256(os.path.join(a.model, 'model.safetensors')),
        'maxLength': 128,
        'cases': [{'text': t, 'ids': i, 'embedding': [round(float(x), 9) for x in e]} for t, i, e in zip(EMBED, ids, emb)],
    }
    try:
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(a.model, device='cpu')
        st.max_seq_length = 128
        ref = st.encode(EMBED, normalize_embeddings=False, convert_to_numpy=True).astype(np.float64)
        result['sentenceTransformersMaxAbsDelta'] = float(np.abs(ref - np.array(emb)).max())
    except ImportError:
        result['sentenceTransformersMaxAbsDelta'] = None
    with open(os.path.join(a.out, 'embeddings.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, ensure_ascii=False, separators=(',', ':'))
    print(f'{len(texts)} tokenizer cases, {len(EMBED)} embeddings; sentence-transformers max |delta|: '
          f'{result["sentenceTransformersMaxAbsDelta"]}')


if __name__ == '__main__':
    main()
