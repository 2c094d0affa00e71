/**
 * AdamW (decoupled weight decay, as `torch.optim.AdamW`) over named tfjs variables, with its moments readable and
 * writable by name so a checkpoint can hold them and a resumed run continue exactly. No decay on biases and
 * LayerNorm parameters (what sentence-transformers' fit does).
 */
import * as tf from '@tensorflow/tfjs';

/** AdamW hyperparameters. */
export interface AdamWOptions {
  /** @default 0.9 */
  beta1?: number;
  /** @default 0.999 */
  beta2?: number;
  /** @default 1e-6 (sentence-transformers / transformers AdamW) */
  epsilon?: number;
  /** @default 0.01 */
  weightDecay?: number;
}

/** True for parameters that get no weight decay: biases and LayerNorm gains/offsets. */
export function noDecay(name: string): boolean {
  return /bias|beta|gamma|ln/i.test(name.split('.').pop() ?? name);
}

/** AdamW over `vars` (name -> variable). */
export class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /** Updates applied so far. */
  step = 0;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;

  constructor(
    readonly vars: Map<string, tf.Variable>,
    opts: AdamWOptions = {},
  ) {
    this.b1 = opts.beta1 ?? 0.9;
    this.b2 = opts.beta2 ?? 0.999;
    this.eps = opts.epsilon ?? 1e-6;
    this.wd = opts.weightDecay ?? 0.01;
    for (const [name, x] of vars) {
      this.m.set(name, tf.variable(tf.zerosLike(x), false));
      this.v.set(name, tf.variable(tf.zerosLike(x), false));
    }
  }

  /** Apply one update with gradients by variable name and learning rate `lr`. */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.step++;
    const c1 = 1 - this.b1 ** this.step;
    const c2 = 1 - this.b2 ** this.step;
    tf.tidy(() => {
      for (const [name, g] of grads) {
        const x = this.vars.get(name);
        const m = this.m.get(name);
        const v = this.v.get(name);
        if (!x || !m || !v) continue;
        const m1 = tf.add(tf.mul(m, this.b1), tf.mul(g, 1 - this.b1));
        const v1 = tf.add(tf.mul(v, this.b2), tf.mul(tf.square(g), 1 - this.b2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.mul(m1, lr / c1), tf.add(tf.sqrt(tf.div(v1, c2)), this.eps));
        const decayed = this.wd > 0 && !noDecay(name) ? tf.mul(x, 1 - lr * this.wd) : x;
        x.assign(tf.sub(decayed, update));
      }
    });
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
  }
}
