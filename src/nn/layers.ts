/** The layers of the paper's LeNet-type networks and their autoencoders. */
import * as ag from '../autograd/index.ts';
import { Rng, ones, zeros } from '../tensor/creation.ts';
import type { DType } from '../tensor/kernels/types.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { torchDefaultBias, torchDefaultWeight } from './init.ts';

export interface LayerOptions { dtype?: DType; rng?: Rng }
const defaultRng = (): Rng => new Rng(0);

export interface ConvLayerOptions extends LayerOptions { stride?: number; padding?: number; bias?: boolean }

/** Weight (PyTorch default init) and optional bias shared by Conv2d and ConvTranspose2d. */
abstract class ConvLayer extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(weightShape: number[], outChannels: number, readonly opts: ConvLayerOptions) {
    super();
    const rng = opts.rng ?? defaultRng(), dtype = opts.dtype ?? 'float32';
    this.weight = this.registerParameter('weight', zeros(weightShape, dtype));
    torchDefaultWeight(this.weight, rng);
    this.bias = opts.bias === false ? null : this.registerParameter('bias', zeros([outChannels], dtype));
    if (this.bias) torchDefaultBias(this.bias, this.weight.shape, rng);
  }
  protected get conv(): { stride: number; padding: number } {
    return { stride: this.opts.stride ?? 1, padding: this.opts.padding ?? 0 };
  }
}

/** Weight layout [out, in, kh, kw]. */
export class Conv2d extends ConvLayer {
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: ConvLayerOptions = {}) {
    super([outChannels, inChannels, kernelSize, kernelSize], outChannels, opts);
  }
  forward(x: Tensor): Tensor { return ag.conv2d(x, this.weight, this.bias, this.conv); }
}

/** Weight layout [in, out, kh, kw], as PyTorch's ConvTranspose2d. */
export class ConvTranspose2d extends ConvLayer {
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: ConvLayerOptions = {}) {
    super([inChannels, outChannels, kernelSize, kernelSize], outChannels, opts);
  }
  forward(x: Tensor): Tensor { return ag.convTranspose2d(x, this.weight, this.bias, this.conv); }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LayerOptions & { bias?: boolean } = {}) {
    super();
    const rng = opts.rng ?? defaultRng(), dtype = opts.dtype ?? 'float32';
    this.weight = this.registerParameter('weight', zeros([outFeatures, inFeatures], dtype));
    torchDefaultWeight(this.weight, rng);
    this.bias = opts.bias === false ? null : this.registerParameter('bias', zeros([outFeatures], dtype));
    if (this.bias) torchDefaultBias(this.bias, this.weight.shape, rng);
  }
  forward(x: Tensor): Tensor { return ag.linear(x, this.weight, this.bias); }
}

/**
 * BatchNorm over channel axis 1, for [n, c] (1d) and [n, c, h, w] (2d) inputs. affine=false is
 * what the reference networks use; with affine, y = x̂·weight + bias (weight 1, bias 0 at init).
 */
export class BatchNorm extends Module {
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;
  readonly momentum: number;
  constructor(readonly numFeatures: number, opts: { dtype?: DType; eps?: number; momentum?: number; affine?: boolean } = {}) {
    super();
    const dtype = opts.dtype ?? 'float32';
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = opts.affine ? this.registerParameter('weight', ones([numFeatures], dtype)) : null;
    this.bias = opts.affine ? this.registerParameter('bias', zeros([numFeatures], dtype)) : null;
    this.runningMean = this.registerBuffer('running_mean', zeros([numFeatures], dtype));
    this.runningVar = this.registerBuffer('running_var', ones([numFeatures], dtype));
  }
  /**
   * Whether call() would only normalise with the running statistics (eval mode, no affine part, no
   * hook, forward not replaced), so that a fused inference op may stand in for it.
   */
  get plainEval(): boolean {
    return !this.training && !this.weight && !this.hasHooks && this.forward === BatchNorm.prototype.forward;
  }

  forward(x: Tensor): Tensor {
    const y = ag.batchNorm(x, { runningMean: this.runningMean, runningVar: this.runningVar, training: this.training, momentum: this.momentum, eps: this.eps });
    if (!this.weight || !this.bias) return y;
    const shape = x.rank === 4 ? [1, this.numFeatures, 1, 1] : [1, this.numFeatures];
    return ag.add(ag.mul(y, ag.reshape(this.weight, shape)), ag.reshape(this.bias, shape));
  }
}
