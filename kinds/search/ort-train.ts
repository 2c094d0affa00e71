/**
 * A fine-tuning step as one ONNX graph run by onnxruntime: the forward pass of the top trainable layers over the
 * cached outputs of the frozen ones, the contrastive loss, and the hand-written backward pass, returning the loss and
 * every trainable tensor's gradient. onnxruntime's CPU GEMM (MLAS, AVX-512 where the host has it) multiplies about
 * three times as fast as tfjs wasm's (XNNPACK, 128-bit SIMD), so on CPU this engine runs the same step several times
 * faster than the tfjs one (bench/search.ts `train`). Same math as {@link BertEncoder} and fine-tune.ts's loss: the
 * gradients equal tfjs autodiff's within float32 rounding (test/unit/search/ort-train.test.ts).
 *
 * Graph inputs: the trainable layers' parameters (`l{i}.{name}`, kernels `[in, out]`), the two sides' hidden states
 * `xq [Bq, Tq, H]`, `xd [Bd, Td, H]` and masks `mq`, `md` (float), and `labels [Bq, Bd]` (one-hot: query i's positive
 * is doc i). Outputs: `loss` and `grad.l{i}.{name}` for every parameter.
 */
import * as ort from 'onnxruntime-node';
import { DType, GraphBuilder, attr, encodeModel } from '../../lib/onnx/builder';
import type { BertConfig } from './base-model';
import { SEARCH_OPSET } from './onnx-encoder';

/** The parameters of one layer, in graph-input order, with their shapes. */
export function layerParamShapes(c: BertConfig): Array<[string, number[]]> {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  return [
    ['qKernel', [H, H]],
    ['qBias', [H]],
    ['kKernel', [H, H]],
    ['kBias', [H]],
    ['vKernel', [H, H]],
    ['vBias', [H]],
    ['outKernel', [H, H]],
    ['outBias', [H]],
    ['ln1Gamma', [H]],
    ['ln1Beta', [H]],
    ['ffnInKernel', [H, I]],
    ['ffnInBias', [I]],
    ['ffnOutKernel', [I, H]],
    ['ffnOutBias', [H]],
    ['ln2Gamma', [H]],
    ['ln2Beta', [H]],
  ];
}

/** Intermediate values of one layer's forward pass that its backward pass needs. */
interface LayerTape {
  x: string;
  qh: string;
  kh: string;
  vh: string;
  p: string;
  ctx: string;
  xh1: string;
  rstd1: string;
  h1: string;
  f1: string;
  cdf: string;
  gl: string;
  xh2: string;
  rstd2: string;
}

class StepGraph {
  readonly g = new GraphBuilder('recflow_search_train_step', SEARCH_OPSET);
  private readonly H: number;
  private readonly I: number;
  private readonly nh: number;
  private readonly dh: number;
  readonly c1: string;

  constructor(
    readonly c: BertConfig,
    readonly layers: number[],
  ) {
    this.H = c.hiddenSize;
    this.I = c.intermediateSize;
    this.nh = c.numHeads;
    this.dh = c.hiddenSize / c.numHeads;
    const g = this.g;
    g.int64('shape_heads', [0, 0, this.nh, this.dh]);
    g.int64('shape_merge', [0, 0, this.H]);
    g.int64('shape_2d_h', [-1, this.H]);
    g.int64('shape_2d_i', [-1, this.I]);
    g.int64('ax_last', [-1]);
    g.int64('ax_bt', [0, 1]);
    g.int64('ax1', [1]);
    g.int64('ax2', [2]);
    g.int64('ax12', [1, 2]);
    g.float('f_half', [0.5], []);
    g.float('f_one', [1], []);
    g.float('f_sqrt1_2', [Math.SQRT1_2], []);
    g.float('f_inv_sqrt_2pi', [1 / Math.sqrt(2 * Math.PI)], []);
    g.float('f_neg_half', [-0.5], []);
    g.float('f_eps', [c.layerNormEps], []);
    g.float('f_neg_big', [-1e9], []);
    g.float('f_1e_9', [1e-9], []);
    g.float('f_1e_12', [1e-12], []);
    this.c1 = g.float('f_scale_attn', [1 / Math.sqrt(this.dh)], []);
    for (const l of layers)
      for (const [name, shape] of layerParamShapes(c)) g.input(`l${l}.${name}`, DType.float, shape);
  }

  private op(type: string, inputs: string[], attrs: Parameters<GraphBuilder['op1']>[2] = {}): string {
    return this.g.op1(type, inputs, attrs);
  }
  private mul(a: string, b: string) {
    return this.op('Mul', [a, b]);
  }
  private add(a: string, b: string) {
    return this.op('Add', [a, b]);
  }
  private sub(a: string, b: string) {
    return this.op('Sub', [a, b]);
  }
  private mm(a: string, b: string) {
    return this.op('MatMul', [a, b]);
  }
  private tr(a: string, perm: number[]) {
    return this.op('Transpose', [a], { perm: attr.ints(perm) });
  }
  private mean(a: string) {
    return this.op('ReduceMean', [a], { axes: attr.ints([-1]), keepdims: attr.int(1) });
  }
  /** Sum over batch and sequence: `[B, T, n] -> [n]`. */
  private sumBT(a: string) {
    return this.op('ReduceSum', [a, 'ax_bt'], { keepdims: attr.int(0) });
  }
  /** `x^T @ g` over all tokens: `[B, T, in]`, `[B, T, out]` -> `[in, out]`. */
  private weightGrad(x: string, gr: string, inShape: string, outShape: string) {
    return this.mm(this.tr(this.op('Reshape', [x, inShape]), [1, 0]), this.op('Reshape', [gr, outShape]));
  }
  private dense(x: string, l: number, k: string, b: string) {
    return this.add(this.mm(x, `l${l}.${k}`), `l${l}.${b}`);
  }
  /** LayerNorm forward: returns y, xhat, rstd. */
  private ln(u: string, l: number, gamma: string, beta: string): [string, string, string] {
    const xc = this.sub(u, this.mean(u));
    const rstd = this.op('Reciprocal', [this.op('Sqrt', [this.add(this.mean(this.mul(xc, xc)), 'f_eps')])]);
    const xh = this.mul(xc, rstd);
    return [this.add(this.mul(xh, `l${l}.${gamma}`), `l${l}.${beta}`), xh, rstd];
  }
  /** LayerNorm backward: du, dgamma, dbeta. */
  private lnBack(dy: string, xh: string, rstd: string, l: number, gamma: string): [string, string, string] {
    const dxh = this.mul(dy, `l${l}.${gamma}`);
    const du = this.mul(rstd, this.sub(this.sub(dxh, this.mean(dxh)), this.mul(xh, this.mean(this.mul(dxh, xh)))));
    return [du, this.sumBT(this.mul(dy, xh)), this.sumBT(dy)];
  }

  /** One layer forward over `x [B, T, H]` with attention bias `bias [B, 1, 1, T]`. */
  layerForward(l: number, x: string, bias: string): [string, LayerTape] {
    const heads = (k: string, b: string, perm: number[]) =>
      this.tr(this.op('Reshape', [this.dense(x, l, k, b), 'shape_heads']), perm);
    const qh = heads('qKernel', 'qBias', [0, 2, 1, 3]);
    const kh = heads('kKernel', 'kBias', [0, 2, 1, 3]);
    const vh = heads('vKernel', 'vBias', [0, 2, 1, 3]);
    const s = this.add(this.mul(this.mm(qh, this.tr(kh, [0, 1, 3, 2])), this.c1), bias);
    const p = this.op('Softmax', [s], { axis: attr.int(-1) });
    const ctx = this.op('Reshape', [this.tr(this.mm(p, vh), [0, 2, 1, 3]), 'shape_merge']);
    const [h1, xh1, rstd1] = this.ln(this.add(x, this.dense(ctx, l, 'outKernel', 'outBias')), l, 'ln1Gamma', 'ln1Beta');
    const f1 = this.dense(h1, l, 'ffnInKernel', 'ffnInBias');
    const cdf = this.mul('f_half', this.add('f_one', this.op('Erf', [this.mul(f1, 'f_sqrt1_2')])));
    const gl = this.mul(f1, cdf);
    const [out, xh2, rstd2] = this.ln(
      this.add(h1, this.dense(gl, l, 'ffnOutKernel', 'ffnOutBias')),
      l,
      'ln2Gamma',
      'ln2Beta',
    );
    return [out, { x, qh, kh, vh, p, ctx, xh1, rstd1, h1, f1, cdf, gl, xh2, rstd2 }];
  }

  /** One layer backward: the parameter gradients by name, and dx (unless `needDx` is false). */
  layerBackward(l: number, t: LayerTape, dout: string, needDx: boolean): [Map<string, string>, string | undefined] {
    const grads = new Map<string, string>();
    const [du2, dg2, db2] = this.lnBack(dout, t.xh2, t.rstd2, l, 'ln2Gamma');
    grads.set('ln2Gamma', dg2).set('ln2Beta', db2);
    grads
      .set('ffnOutKernel', this.weightGrad(t.gl, du2, 'shape_2d_i', 'shape_2d_h'))
      .set('ffnOutBias', this.sumBT(du2));
    const dgl = this.mm(du2, this.tr(`l${l}.ffnOutKernel`, [1, 0]));
    const pdf = this.mul('f_inv_sqrt_2pi', this.op('Exp', [this.mul(this.mul(t.f1, t.f1), 'f_neg_half')]));
    const df1 = this.mul(dgl, this.add(t.cdf, this.mul(t.f1, pdf)));
    grads.set('ffnInKernel', this.weightGrad(t.h1, df1, 'shape_2d_h', 'shape_2d_i')).set('ffnInBias', this.sumBT(df1));
    const dh1 = this.add(du2, this.mm(df1, this.tr(`l${l}.ffnInKernel`, [1, 0])));
    const [du1, dg1, db1] = this.lnBack(dh1, t.xh1, t.rstd1, l, 'ln1Gamma');
    grads.set('ln1Gamma', dg1).set('ln1Beta', db1);
    grads.set('outKernel', this.weightGrad(t.ctx, du1, 'shape_2d_h', 'shape_2d_h')).set('outBias', this.sumBT(du1));
    const dctx = this.tr(
      this.op('Reshape', [this.mm(du1, this.tr(`l${l}.outKernel`, [1, 0])), 'shape_heads']),
      [0, 2, 1, 3],
    );
    const dp = this.mm(dctx, this.tr(t.vh, [0, 1, 3, 2]));
    const dvh = this.mm(this.tr(t.p, [0, 1, 3, 2]), dctx);
    const ds = this.mul(
      this.mul(t.p, this.sub(dp, this.op('ReduceSum', [this.mul(dp, t.p), 'ax_last'], { keepdims: attr.int(1) }))),
      this.c1,
    );
    const dqh = this.mm(ds, t.kh);
    const dkh = this.mm(this.tr(ds, [0, 1, 3, 2]), t.qh);
    const merge = (h: string) => this.op('Reshape', [this.tr(h, [0, 2, 1, 3]), 'shape_merge']);
    const dq = merge(dqh);
    const dk = merge(dkh);
    const dv = merge(dvh);
    grads.set('qKernel', this.weightGrad(t.x, dq, 'shape_2d_h', 'shape_2d_h')).set('qBias', this.sumBT(dq));
    grads.set('kKernel', this.weightGrad(t.x, dk, 'shape_2d_h', 'shape_2d_h')).set('kBias', this.sumBT(dk));
    grads.set('vKernel', this.weightGrad(t.x, dv, 'shape_2d_h', 'shape_2d_h')).set('vBias', this.sumBT(dv));
    if (!needDx) return [grads, undefined];
    const back = (d: string, k: string) => this.mm(d, this.tr(`l${l}.${k}`, [1, 0]));
    const dx = this.add(this.add(du1, back(dq, 'qKernel')), this.add(back(dk, 'kKernel'), back(dv, 'vKernel')));
    return [grads, dx];
  }

  /** Forward of one side to normalised embeddings; returns what its backward needs. */
  side(x: string, mask: string) {
    const bias = this.op('Unsqueeze', [this.mul(this.sub('f_one', mask), 'f_neg_big'), 'ax12']);
    let h = x;
    const tapes: LayerTape[] = [];
    for (const l of this.layers) {
      const [out, tape] = this.layerForward(l, h, bias);
      tapes.push(tape);
      h = out;
    }
    const m3 = this.op('Unsqueeze', [mask, 'ax1']); // [B, 1, T]
    const count = this.op('Max', [this.op('ReduceSum', [m3, 'ax_last'], { keepdims: attr.int(1) }), 'f_1e_9']); // [B,1,1]
    const e = this.op('Squeeze', [this.op('Div', [this.mm(m3, h), count]), 'ax1']); // [B, H]
    const norm = this.op('Max', [
      this.op('ReduceL2', [e], { axes: attr.ints([-1]), keepdims: attr.int(1) }),
      'f_1e_12',
    ]);
    const en = this.op('Div', [e, norm]);
    return { en, norm, tapes, mask, count };
  }

  /** Backward of one side from d(normalised embedding); returns the parameter gradients per layer. */
  sideBack(s: ReturnType<StepGraph['side']>, den: string): Map<number, Map<string, string>> {
    const de = this.op('Div', [
      this.sub(den, this.mul(s.en, this.op('ReduceSum', [this.mul(den, s.en), 'ax_last'], { keepdims: attr.int(1) }))),
      s.norm,
    ]);
    // d hidden[b, t] = de[b] * mask[b, t] / count[b].
    const w = this.op('Unsqueeze', [this.op('Div', [s.mask, this.op('Squeeze', [s.count, 'ax1'])]), 'ax2']); // [B, T, 1]
    let d = this.mul(this.op('Unsqueeze', [de, 'ax1']), w);
    const out = new Map<number, Map<string, string>>();
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const [grads, dx] = this.layerBackward(this.layers[i]!, s.tapes[i]!, d, i > 0);
      out.set(this.layers[i]!, grads);
      if (dx) d = dx;
    }
    return out;
  }
}

/**
 * The step graph for the layers `layers` (indices of the encoder, lowest first) and similarity scale `scale`.
 */
export function buildTrainStepGraph(config: BertConfig, layers: number[], scale: number): Uint8Array {
  const s = new StepGraph(config, layers);
  const g = s.g;
  const H = config.hiddenSize;
  g.input('xq', DType.float, ['bq', 'tq', H]);
  g.input('mq', DType.float, ['bq', 'tq']);
  g.input('xd', DType.float, ['bd', 'td', H]);
  g.input('md', DType.float, ['bd', 'td']);
  g.input('labels', DType.float, ['bq', 'bd']);
  const q = s.side('xq', 'mq');
  const d = s.side('xd', 'md');
  const fScale = g.float('f_scale', [scale], []);
  const logits = g.op1('Mul', [
    g.op1('MatMul', [q.en, g.op1('Transpose', [d.en], { perm: attr.ints([1, 0]) })]),
    fScale,
  ]);
  const logp = g.op1('LogSoftmax', [logits], { axis: attr.int(-1) });
  const bq = g.op1('Cast', [g.op1('Shape', ['xq'], { start: attr.int(0), end: attr.int(1) })], {
    to: attr.int(DType.float),
  });
  const neg = g.op1('Neg', [
    g.op1('ReduceSum', [g.op1('Mul', ['labels', logp]), g.int64('ax01', [0, 1])], { keepdims: attr.int(0) }),
  ]);
  g.op1('Div', [neg, g.op1('Squeeze', [bq, g.int64('ax0', [0])])], {}, 'loss');
  // d logits = (softmax - labels) / Bq; d en_q = scale dlogits @ en_d; d en_d = scale dlogits^T @ en_q.
  const dlogits = g.op1('Mul', [g.op1('Div', [g.op1('Sub', [g.op1('Exp', [logp]), 'labels']), bq]), fScale]);
  const denq = g.op1('MatMul', [dlogits, d.en]);
  const dend = g.op1('MatMul', [g.op1('Transpose', [dlogits], { perm: attr.ints([1, 0]) }), q.en]);
  const gq = s.sideBack(q, denq);
  const gd = s.sideBack(d, dend);
  g.output('loss', DType.float, []);
  for (const l of layers) {
    for (const [name, shape] of layerParamShapes(config)) {
      g.op1('Add', [gq.get(l)!.get(name)!, gd.get(l)!.get(name)!], {}, `grad.l${l}.${name}`);
      g.output(`grad.l${l}.${name}`, DType.float, shape);
    }
  }
  return encodeModel(g.model({ layers: layers.join(','), scale: String(scale) }));
}

/**
 * The distillation step graph: inputs `x [B, T, H]` (the embedding layer's output), `m [B, T]` and the teacher's
 * embeddings `target [B, H]`; loss `1 - mean_b cos(student_b, target_b)` (as kinds/search/distill.ts); outputs `loss`
 * and `grad.l{i}.{name}`.
 */
export function buildDistillStepGraph(config: BertConfig, layers: number[]): Uint8Array {
  const s = new StepGraph(config, layers);
  const g = s.g;
  const H = config.hiddenSize;
  g.input('x', DType.float, ['b', 't', H]);
  g.input('m', DType.float, ['b', 't']);
  g.input('target', DType.float, ['b', H]);
  const side = s.side('x', 'm');
  const b = g.op1('Cast', [g.op1('Shape', ['x'], { start: attr.int(0), end: attr.int(1) })], {
    to: attr.int(DType.float),
  });
  const cos = g.op1('ReduceSum', [g.op1('Mul', [side.en, 'target']), g.int64('ax01', [0, 1])], {
    keepdims: attr.int(0),
  });
  g.op1('Sub', ['f_one', g.op1('Div', [cos, g.op1('Squeeze', [b, g.int64('ax0', [0])])])], {}, 'loss');
  // d en = -target / B.
  const den = g.op1('Neg', [g.op1('Div', ['target', b])]);
  const grads = s.sideBack(side, den);
  g.output('loss', DType.float, []);
  for (const l of layers) {
    for (const [name, shape] of layerParamShapes(config)) {
      g.op1('Identity', [grads.get(l)!.get(name)!], {}, `grad.l${l}.${name}`);
      g.output(`grad.l${l}.${name}`, DType.float, shape);
    }
  }
  return encodeModel(g.model({ layers: layers.join(','), loss: 'distill' }));
}

/** The step graph in an onnxruntime session, with the parameters held as Float32Arrays. */
export class OrtStepRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Parameters by graph-input name (`l{i}.{name}`). */
    readonly params: Map<string, { shape: number[]; data: Float32Array }>,
  ) {}

  /**
   * @param params initial values by `l{i}.{name}` for every layer in `layers`
   * @param threads onnxruntime intra-op threads; @default 1
   */
  static async create(
    config: BertConfig,
    layers: number[],
    scale: number,
    params: Map<string, { shape: number[]; data: Float32Array }>,
    threads = 1,
  ): Promise<OrtStepRunner> {
    return OrtStepRunner.fromGraph(buildTrainStepGraph(config, layers, scale), params, threads);
  }

  /** A runner of the distillation step ({@link buildDistillStepGraph}). */
  static async distill(
    config: BertConfig,
    layers: number[],
    params: Map<string, { shape: number[]; data: Float32Array }>,
    threads = 1,
  ): Promise<OrtStepRunner> {
    return OrtStepRunner.fromGraph(buildDistillStepGraph(config, layers), params, threads);
  }

  private static async fromGraph(
    graph: Uint8Array,
    params: Map<string, { shape: number[]; data: Float32Array }>,
    threads: number,
  ): Promise<OrtStepRunner> {
    const session = await ort.InferenceSession.create(graph, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
    return new OrtStepRunner(session, params);
  }

  /** Loss and gradients (by parameter name) of one batch: hidden `[B, T, H]` and masks `[B, T]` per side. */
  async run(
    q: { hidden: Float32Array; mask: Float32Array; batch: number; seq: number },
    d: { hidden: Float32Array; mask: Float32Array; batch: number; seq: number },
    hiddenSize: number,
  ): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const T = ort.Tensor;
    const labels = new Float32Array(q.batch * d.batch);
    for (let i = 0; i < q.batch; i++) labels[i * d.batch + i] = 1;
    const feeds: Record<string, ort.Tensor> = {
      xq: new T('float32', q.hidden, [q.batch, q.seq, hiddenSize]),
      mq: new T('float32', q.mask, [q.batch, q.seq]),
      xd: new T('float32', d.hidden, [d.batch, d.seq, hiddenSize]),
      md: new T('float32', d.mask, [d.batch, d.seq]),
      labels: new T('float32', labels, [q.batch, d.batch]),
    };
    return this.step(feeds);
  }

  /** Loss and gradients of one distillation batch: `x [B, T, H]`, mask, the teacher's `target [B, H]`. */
  async runDistill(
    x: { hidden: Float32Array; mask: Float32Array; batch: number; seq: number },
    target: Float32Array,
    hiddenSize: number,
  ): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const T = ort.Tensor;
    return this.step({
      x: new T('float32', x.hidden, [x.batch, x.seq, hiddenSize]),
      m: new T('float32', x.mask, [x.batch, x.seq]),
      target: new T('float32', target, [x.batch, hiddenSize]),
    });
  }

  private async step(feeds: Record<string, ort.Tensor>): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const T = ort.Tensor;
    for (const [name, p] of this.params) feeds[name] = new T('float32', p.data, p.shape);
    const out = await this.session.run(feeds);
    const grads = new Map<string, Float32Array>();
    for (const name of this.params.keys()) grads.set(name, out[`grad.${name}`]!.data as Float32Array);
    return { loss: (out.loss!.data as Float32Array)[0] ?? NaN, grads };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** AdamW on Float32Arrays, the same update as kinds/search/adamw.ts `AdamW` (moments by parameter name). */
export class ArrayAdamW {
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  step = 0;
  constructor(
    private readonly decays: (name: string) => boolean,
    private readonly opts: { beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number } = {},
  ) {}

  apply(params: Map<string, { data: Float32Array }>, grads: Map<string, Float32Array>, lr: number): void {
    this.step++;
    const b1 = this.opts.beta1 ?? 0.9;
    const b2 = this.opts.beta2 ?? 0.999;
    const eps = this.opts.epsilon ?? 1e-6;
    const wd = this.opts.weightDecay ?? 0.01;
    const c1 = 1 - b1 ** this.step;
    const c2 = 1 - b2 ** this.step;
    for (const [name, g] of grads) {
      const p = params.get(name)?.data;
      if (!p) continue;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m) this.m.set(name, (m = new Float32Array(p.length)));
      if (!v) this.v.set(name, (v = new Float32Array(p.length)));
      const decay = wd > 0 && this.decays(name) ? 1 - lr * wd : 1;
      const a = lr / c1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] ?? 0;
        const mi = b1 * (m[i] ?? 0) + (1 - b1) * gi;
        const vi = b2 * (v[i] ?? 0) + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = (p[i] ?? 0) * decay - (a * mi) / (Math.sqrt(vi / c2) + eps);
      }
    }
  }
}
