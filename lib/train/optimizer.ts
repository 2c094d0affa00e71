/**
 * Adam with one fused kernel per variable on cpu and wasm (lib/train/kernels.ts `RecflowAdam`), the stock tfjs
 * formula on other backends. Same arithmetic as `tf.train.adam` (and PyTorch's `torch.optim.Adam` with the same
 * epsilon): `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; x -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
 *
 * The stock optimizer runs about twelve elementwise kernels per variable per step (the moments, the bias corrections,
 * the square root, the update, each a pass over the variable); this runs one for variables up to
 * {@link FUSED_MAX_SIZE} elements (dense layers, small tables), where launching kernels costs more than the
 * arithmetic, and the stock formula (wasm SIMD) for larger ones. Dense, like the stock one: every row
 * of an embedding table decays its moments and moves each step, touched or not (a lazy/sparse Adam would change the
 * model's arithmetic).
 */
import * as tf from '@tensorflow/tfjs';

type NamedTensor = { name: string; tensor: tf.Tensor };
import { ADAM_UPDATE, hasFastKernel, type AdamAttrs } from './kernels';

/** Variables up to this many elements take the fused kernel, larger ones the stock elementwise ops. */
export const FUSED_MAX_SIZE = 16384;

/** `tf.train.adam`'s default epsilon (the backend's, 1e-7 on float32 backends). */
export const ADAM_EPSILON = 1e-7;

/** Adam whose update is one kernel per variable where recflow's kernel is registered. */
export class FusedAdam extends tf.Optimizer {
  /** Read at every step: set it to change the learning rate between steps (a schedule). */
  learningRate: number;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  private step = 0;

  /**
   * @param learningRate @default 0.001
   * @param beta1 @default 0.9
   * @param beta2 @default 0.999
   * @param epsilon @default {@link ADAM_EPSILON}
   */
  constructor(
    learningRate = 0.001,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = ADAM_EPSILON,
  ) {
    super();
    this.learningRate = learningRate;
  }

  static get className(): string {
    return 'RecflowFusedAdam';
  }

  /** Steps applied so far. */
  get iterationsDone(): number {
    return this.step;
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const pairs: Array<[string, tf.Tensor | undefined]> = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor])
      : Object.entries(variableGradients);
    this.step++;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    const fusedKernel = hasFastKernel(ADAM_UPDATE, tf.getBackend());
    for (const [name, grad] of pairs) {
      if (!grad) continue;
      const value = tf.engine().registeredVariables[name];
      if (!value) throw new Error(`FusedAdam: no variable named ${name}`);
      let mv = this.moments.get(name);
      if (!mv) {
        mv = tf.tidy(() => ({ m: tf.zerosLike(value).variable(false), v: tf.zerosLike(value).variable(false) }));
        this.moments.set(name, mv);
      }
      const { m, v } = mv;
      // The JS kernel saves a dozen kernel launches per variable; on a large table the stock ops' SIMD passes win.
      if (fusedKernel && value.size <= FUSED_MAX_SIZE) {
        const attrs: AdamAttrs = {
          learningRate: this.learningRate,
          beta1: this.beta1,
          beta2: this.beta2,
          epsilon: this.epsilon,
          c1,
          c2,
        };
        const [x1, m1, v1] = tf
          .engine()
          .runKernel<tf.Tensor[]>(ADAM_UPDATE, { x: value, m, v, g: grad }, attrs as unknown as tf.NamedAttrMap);
        value.assign(x1!);
        m.assign(m1!);
        v.assign(v1!);
        tf.dispose([x1!, m1!, v1!]);
      } else {
        tf.tidy(() => {
          const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1));
          const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2));
          m.assign(m1);
          v.assign(v1);
          const upd = tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), this.epsilon));
          value.assign(tf.sub(value, tf.mul(upd, this.learningRate)));
        });
      }
    }
    this.incrementIterations();
  }

  override dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
    super.dispose();
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [name, { m }] of this.moments) out.push({ name: `${name}/m`, tensor: m });
    for (const [name, { v }] of this.moments) out.push({ name: `${name}/v`, tensor: v });
    return out;
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    this.step = this.iterations;
    for (const { name, tensor } of rest) {
      const base = name.replace(/\/[mv]$/, '');
      const entry = this.moments.get(base) ?? {
        m: undefined as unknown as tf.Variable,
        v: undefined as unknown as tf.Variable,
      };
      if (name.endsWith('/m')) entry.m = tensor.variable(false);
      else entry.v = tensor.variable(false);
      this.moments.set(base, entry);
    }
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}
