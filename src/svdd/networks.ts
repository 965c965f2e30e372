/**
 * The paper's LeNet-type networks (Ruff et al. 2018, Deep-SVDD-PyTorch), with PyTorch's module
 * names so weights move between the two: encoders map an image to a rep_dim code without bias
 * terms (a bias would let the network collapse onto the center trivially, paper Prop. 2), and
 * autoencoders add a mirrored decoder. Every BatchNorm has affine=False and eps=1e-4.
 */
import * as ag from '../autograd/index.ts';
import { Rng } from '../tensor/creation.ts';
import type { DType } from '../tensor/kernels/types.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { BatchNorm, Conv2d, ConvTranspose2d, Linear, Module, leakyReluGain, xavierUniform } from '../nn/index.ts';

export type NetName = 'mnist_LeNet' | 'cifar10_LeNet' | 'cifar10_LeNet_ELU';
export const NET_NAMES: readonly NetName[] = ['mnist_LeNet', 'cifar10_LeNet', 'cifar10_LeNet_ELU'];
/** Each network's input (C, H, W) and code size, as its classes define them (a test checks they agree). */
export const NET_SHAPES: Record<NetName, { inputShape: readonly [number, number, number]; repDim: number }> = {
  mnist_LeNet: { inputShape: [1, 28, 28], repDim: 32 },
  cifar10_LeNet: { inputShape: [3, 32, 32], repDim: 128 },
  cifar10_LeNet_ELU: { inputShape: [3, 32, 32], repDim: 128 },
};

export interface NetOptions { dtype?: DType; seed?: number | string }

/** An encoder φ: image → code. */
export interface Encoder extends Module {
  readonly repDim: number;
  readonly inputShape: readonly [number, number, number];
}

/** An autoencoder whose encoder layers carry the same names as the matching Encoder's. */
export interface Autoencoder extends Module {
  readonly repDim: number;
  readonly inputShape: readonly [number, number, number];
  /** The smallest batch it can train on (2 with a BatchNorm over features, which needs two samples). */
  readonly minTrainingBatch?: number;
  encode(x: Tensor): Tensor;
  decode(z: Tensor): Tensor;
}

const bnOpts = (dtype: DType) => ({ dtype, eps: 1e-4, affine: false });

interface Activation {
  (x: Tensor): Tensor;
  /** The activation followed by 2×2 max pooling as one fused op, where there is one (same results). */
  pooled?: (x: Tensor) => Tensor;
  /** Eval-mode BatchNorm, the activation and 2×2 max pooling as one fused op (same results). */
  normPooled?: (x: Tensor, bn: BatchNorm) => Tensor;
}
const leaky: Activation = Object.assign((x: Tensor) => ag.leakyRelu(x, 0.01), {
  pooled: (x: Tensor) => ag.leakyReluMaxPool2d(x, 0.01, 2),
  normPooled: (x: Tensor, bn: BatchNorm) => ag.batchNormLeakyReluMaxPool2d(x, bn, 0.01, 2),
});
const elu: Activation = (x) => ag.elu(x, 1);

/** conv → BN → activation → 2×2 max pool, repeated; then flatten → fc1 (no bias). */
abstract class LeNetEncoderLayers extends Module {
  abstract readonly repDim: number;
  protected abstract readonly stages: { conv: Conv2d; bn: BatchNorm }[];
  protected abstract readonly fc1: Linear;
  protected abstract readonly act: Activation;

  protected encodeLayers(x: Tensor): Tensor {
    let h = x;
    for (const { conv, bn } of this.stages) {
      const c = conv.call(h);
      if (this.act.normPooled && bn.plainEval) { h = this.act.normPooled(c, bn); continue; }
      const z = bn.call(c);
      h = this.act.pooled ? this.act.pooled(z) : ag.maxPool2d(this.act(z), 2);
    }
    return this.fc1.call(ag.flatten(h));
  }
}

class MnistLeNetBase extends LeNetEncoderLayers {
  readonly repDim = 32;
  readonly inputShape = [1, 28, 28] as const;
  protected readonly stages: { conv: Conv2d; bn: BatchNorm }[];
  protected readonly fc1: Linear;
  protected readonly act = leaky;
  constructor(protected readonly rng: Rng, protected readonly dtype: DType) {
    super();
    this.stages = [
      { conv: this.registerModule('conv1', new Conv2d(1, 8, 5, { padding: 2, bias: false, dtype, rng })), bn: this.registerModule('bn1', new BatchNorm(8, bnOpts(dtype))) },
      { conv: this.registerModule('conv2', new Conv2d(8, 4, 5, { padding: 2, bias: false, dtype, rng })), bn: this.registerModule('bn2', new BatchNorm(4, bnOpts(dtype))) },
    ];
    this.fc1 = this.registerModule('fc1', new Linear(4 * 7 * 7, 32, { bias: false, dtype, rng }));
  }
  forward(x: Tensor): Tensor { return this.encodeLayers(x); }
}

export class MnistLeNet extends MnistLeNetBase implements Encoder {
  constructor(opts: NetOptions = {}) { super(new Rng(opts.seed ?? 0), opts.dtype ?? 'float32'); }
}

export class MnistLeNetAutoencoder extends MnistLeNetBase implements Autoencoder {
  private readonly deconv1: ConvTranspose2d; private readonly bn3: BatchNorm;
  private readonly deconv2: ConvTranspose2d; private readonly bn4: BatchNorm;
  private readonly deconv3: ConvTranspose2d;
  constructor(opts: NetOptions = {}) {
    super(new Rng(opts.seed ?? 0), opts.dtype ?? 'float32');
    const { dtype, rng } = this;
    this.deconv1 = this.registerModule('deconv1', new ConvTranspose2d(2, 4, 5, { padding: 2, bias: false, dtype, rng }));
    this.bn3 = this.registerModule('bn3', new BatchNorm(4, bnOpts(dtype)));
    this.deconv2 = this.registerModule('deconv2', new ConvTranspose2d(4, 8, 5, { padding: 3, bias: false, dtype, rng }));
    this.bn4 = this.registerModule('bn4', new BatchNorm(8, bnOpts(dtype)));
    this.deconv3 = this.registerModule('deconv3', new ConvTranspose2d(8, 1, 5, { padding: 2, bias: false, dtype, rng }));
  }
  encode(x: Tensor): Tensor { return this.encodeLayers(x); }
  decode(z: Tensor): Tensor {
    let h = ag.upsampleNearest(leaky(ag.reshape(z, [z.shape[0]!, 2, 4, 4])), 2);
    h = ag.upsampleNearest(leaky(this.bn3.call(this.deconv1.call(h))), 2);
    h = ag.upsampleNearest(leaky(this.bn4.call(this.deconv2.call(h))), 2);
    return ag.sigmoid(this.deconv3.call(h));
  }
  override forward(x: Tensor): Tensor { return this.decode(this.encode(x)); }
}

/** The CIFAR-10 networks initialise conv weights Glorot-uniform with the leaky-ReLU gain, as the reference. */
class Cifar10LeNetBase extends LeNetEncoderLayers {
  readonly repDim = 128;
  readonly inputShape = [3, 32, 32] as const;
  protected readonly stages: { conv: Conv2d; bn: BatchNorm }[];
  protected readonly fc1: Linear;
  protected readonly act: Activation;
  constructor(protected readonly rng: Rng, protected readonly dtype: DType, activation: 'leaky' | 'elu') {
    super();
    this.act = activation === 'elu' ? elu : leaky;
    const channels = [3, 32, 64, 128];
    this.stages = [1, 2, 3].map((i) => {
      const conv = this.registerModule(`conv${i}`, new Conv2d(channels[i - 1]!, channels[i]!, 5, { padding: 2, bias: false, dtype, rng }));
      xavierUniform(conv.weight, rng, leakyReluGain());
      return { conv, bn: this.registerModule(`bn2d${i}`, new BatchNorm(channels[i]!, bnOpts(dtype))) };
    });
    this.fc1 = this.registerModule('fc1', new Linear(128 * 4 * 4, 128, { bias: false, dtype, rng }));
  }
  forward(x: Tensor): Tensor { return this.encodeLayers(x); }
}

export class Cifar10LeNet extends Cifar10LeNetBase implements Encoder {
  constructor(opts: NetOptions & { activation?: 'leaky' | 'elu' } = {}) {
    super(new Rng(opts.seed ?? 0), opts.dtype ?? 'float32', opts.activation ?? 'leaky');
  }
}

export class Cifar10LeNetAutoencoder extends Cifar10LeNetBase implements Autoencoder {
  /** bn1d normalises the 128 code features over the batch: one sample has no variance (PyTorch raises). */
  readonly minTrainingBatch = 2;
  private readonly bn1d: BatchNorm;
  private readonly deconvs: ConvTranspose2d[];
  private readonly decoderBns: BatchNorm[];
  constructor(opts: NetOptions & { activation?: 'leaky' | 'elu' } = {}) {
    super(new Rng(opts.seed ?? 0), opts.dtype ?? 'float32', opts.activation ?? 'leaky');
    const { dtype, rng } = this;
    this.bn1d = this.registerModule('bn1d', new BatchNorm(128, bnOpts(dtype)));
    const channels = [8, 128, 64, 32, 3];
    this.deconvs = [];
    this.decoderBns = [];
    for (let i = 1; i <= 4; i++) {
      const d = this.registerModule(`deconv${i}`, new ConvTranspose2d(channels[i - 1]!, channels[i]!, 5, { padding: 2, bias: false, dtype, rng }));
      xavierUniform(d.weight, rng, leakyReluGain());
      this.deconvs.push(d);
      if (i < 4) this.decoderBns.push(this.registerModule(`bn2d${i + 3}`, new BatchNorm(channels[i]!, bnOpts(dtype))));
    }
  }
  encode(x: Tensor): Tensor { return this.bn1d.call(this.encodeLayers(x)); }
  decode(z: Tensor): Tensor {
    let h = this.act(ag.reshape(z, [z.shape[0]!, 8, 4, 4]));
    for (let i = 0; i < 3; i++) h = ag.upsampleNearest(this.act(this.decoderBns[i]!.call(this.deconvs[i]!.call(h))), 2);
    return ag.sigmoid(this.deconvs[3]!.call(h));
  }
  override forward(x: Tensor): Tensor { return this.decode(this.encode(x)); }
}

export function buildEncoder(name: NetName, opts: NetOptions = {}): Encoder {
  switch (name) {
    case 'mnist_LeNet': return new MnistLeNet(opts);
    case 'cifar10_LeNet': return new Cifar10LeNet(opts);
    case 'cifar10_LeNet_ELU': return new Cifar10LeNet({ ...opts, activation: 'elu' });
  }
}

export function buildAutoencoder(name: NetName, opts: NetOptions = {}): Autoencoder {
  switch (name) {
    case 'mnist_LeNet': return new MnistLeNetAutoencoder(opts);
    case 'cifar10_LeNet': return new Cifar10LeNetAutoencoder(opts);
    case 'cifar10_LeNet_ELU': return new Cifar10LeNetAutoencoder({ ...opts, activation: 'elu' });
  }
}

/**
 * Initialises the encoder from a trained autoencoder: every parameter and buffer whose name
 * the encoder also has (conv*, bn*, fc1), as the reference's init_network_weights_from_pretraining.
 */
export function copyEncoderWeights(ae: Autoencoder, encoder: Encoder): void {
  const source = ae.stateDict();
  const values = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
  for (const [name] of encoder.stateDict()) {
    const t = source.get(name);
    if (!t) throw new Error(`copyEncoderWeights: the autoencoder has no '${name}'`);
    values.set(name, { shape: t.shape, data: t.values() });
  }
  encoder.loadStateDict(values);
}
