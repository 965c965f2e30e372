/** Adam / AMSGrad with L2 weight decay added to the gradient (PyTorch's Adam, not AdamW). */
import type { FloatArray } from '../tensor/kernels/types.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { allocArray, releaseArray } from '../tensor/tensor.ts';

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

export interface AdamState { stepCount: number; lr: number; expAvg: ArrayLike<number>[]; expAvgSq: ArrayLike<number>[]; maxExpAvgSq: ArrayLike<number>[] }

export class Adam {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;
  stepCount = 0;
  private readonly expAvg: FloatArray[];
  private readonly expAvgSq: FloatArray[];
  private readonly maxExpAvgSq: FloatArray[];

  constructor(readonly params: readonly Tensor[], opts: AdamOptions) {
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.amsgrad = opts.amsgrad ?? false;
    this.expAvg = params.map((p) => allocArray(p.dtype, p.size));
    this.expAvgSq = params.map((p) => allocArray(p.dtype, p.size));
    this.maxExpAvgSq = this.amsgrad ? params.map((p) => allocArray(p.dtype, p.size)) : [];
  }

  /** One update from each parameter's `.grad` (parameters without a gradient are skipped). */
  step(): void {
    this.stepCount++;
    const t = this.stepCount;
    const bc1 = 1 - this.beta1 ** t, bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    const stepSize = this.lr / bc1;
    const { beta1, beta2, eps, weightDecay } = this;
    this.params.forEach((p, k) => {
      if (!p.grad) return;
      if (!p.layout.isContiguous() || p.layout.offset !== 0) throw new Error('Adam: parameters must be dense tensors');
      const w = p.storage, g = p.grad.values();
      const m = this.expAvg[k]!, v = this.expAvgSq[k]!, vMax = this.maxExpAvgSq[k];
      adamUpdate(w, g, m, v, vMax ?? null, beta1, beta2, weightDecay, stepSize, bc2Sqrt, eps);
    });
  }

  /** The optimizer's state (step count, learning rate, moment estimates), copied, for a checkpoint. */
  exportState(): AdamState {
    return {
      stepCount: this.stepCount, lr: this.lr,
      expAvg: this.expAvg.map((a) => a.slice()), expAvgSq: this.expAvgSq.map((a) => a.slice()),
      maxExpAvgSq: this.maxExpAvgSq.map((a) => a.slice()),
    };
  }

  /** Restores a state from exportState of an optimizer over parameters of the same shapes. */
  importState(s: AdamState): void {
    const check = (name: string, src: ArrayLike<number>[], dst: FloatArray[]): void => {
      if (src.length !== dst.length) throw new Error(`Adam.importState: ${name} has ${src.length} tensors, the optimizer ${dst.length}`);
      src.forEach((a, k) => {
        if (a.length !== dst[k]!.length) throw new Error(`Adam.importState: ${name}[${k}] has ${a.length} values, the parameter ${dst[k]!.length}`);
        dst[k]!.set(a);
      });
    };
    check('expAvg', s.expAvg, this.expAvg);
    check('expAvgSq', s.expAvgSq, this.expAvgSq);
    check('maxExpAvgSq', s.maxExpAvgSq, this.maxExpAvgSq);
    this.stepCount = s.stepCount;
    this.lr = s.lr;
  }

  /**
   * Drops the gradients and hands their storage back for reuse by the next backward (the engine
   * gives every new `.grad` storage of its own), so a training loop does not fault in fresh pages
   * for them every step. Do not keep references to the old `.grad` tensors.
   */
  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad && p.grad.storage !== p.storage) releaseArray(p.grad.storage);
      p.grad = null;
    }
  }
}

/** lr = base · gamma^(number of milestones ≤ epoch), as torch.optim.lr_scheduler.MultiStepLR. */
// The update loop is a small function of its own, so that V8 optimises it on its own (inlined in
// step() it ran about 30% slower). vMax is AMSGrad's running maximum of v (null for Adam).
function adamUpdate(w: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, vMax: FloatArray | null, beta1: number, beta2: number,
                    weightDecay: number, stepSize: number, bc2Sqrt: number, eps: number): void {
  const c1 = 1 - beta1, c2 = 1 - beta2;
  for (let i = 0; i < w.length; i++) {
    const wi = w[i]!, gi = g[i]! + weightDecay * wi;
    m[i] = beta1 * m[i]! + c1 * gi;
    v[i] = beta2 * v[i]! + c2 * gi * gi;
    // Read the moments back from storage: in float32 they are rounded, as PyTorch's are.
    let vHat = v[i]!;
    if (vMax) { vHat = Math.max(vHat, vMax[i]!); vMax[i] = vHat; vHat = vMax[i]!; }
    w[i] = wi - stepSize * m[i]! / (Math.sqrt(vHat) / bc2Sqrt + eps);
  }
}

export class MultiStepLR {
  private readonly baseLr: number;
  epoch = 0;
  constructor(private readonly optimizer: { lr: number }, readonly milestones: readonly number[], readonly gamma = 0.1) {
    this.baseLr = optimizer.lr;
  }
  /** Call once at the end of every epoch. */
  step(): void {
    this.epoch++;
    const passed = this.milestones.filter((m) => m <= this.epoch).length;
    this.optimizer.lr = this.baseLr * this.gamma ** passed;
  }
}
