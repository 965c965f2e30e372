/**
 * One tiny training step through the whole engine (autograd, nn layers, Adam) on whichever
 * backend is active, for comparing a gpujs configuration with the `ts` reference. Shared by
 * test/gpujs-backend.test.ts and scripts/gpu-parity.ts.
 */
import * as ag from '../src/autograd/index.ts';
import { Adam } from '../src/nn/index.ts';
import { buildAutoencoder } from '../src/svdd/networks.ts';
import { setBackend } from '../src/tensor/kernels/registry.ts';
import { tensorFromArray } from '../src/tensor/tensor.ts';
import { randomFloats, relError } from './helpers.ts';

export interface NetStep {
  output: Float32Array;
  loss: number;
  /** Gradient of every parameter after backward, by name. */
  grads: Map<string, Float32Array>;
  /** Every parameter after one Adam step, by name. */
  params: Map<string, Float32Array>;
  /** Wall time of forward + backward + step, ms. */
  ms: number;
}

/**
 * The MNIST LeNet autoencoder (convs, transposed convs, BatchNorm, leaky ReLU, max pooling,
 * upsampling, sigmoid, linear layers) on `batch` random images: forward, reconstruction loss,
 * backward, one Adam step, on the backend registered as `backend`.
 */
export async function netStep(backend: string, batch = 4): Promise<NetStep> {
  await setBackend(backend);
  const model = buildAutoencoder('mnist_LeNet', { dtype: 'float32', seed: 7 });
  model.train();
  const x = tensorFromArray(randomFloats(batch * 28 * 28, 5).map((v) => 0.5 + 0.5 * v), [batch, 1, 28, 28]);
  const t0 = performance.now();
  const out = model.forward(x);
  const loss = ag.mean(ag.sum(ag.reshape(ag.square(ag.sub(out, x)), [batch, -1]), 1));
  ag.backward(loss);
  const named = [...model.namedParameters()];
  const grads = new Map(named.map(([n, p]) => [n, Float32Array.from(p.grad!.values())]));
  new Adam(named.map(([, p]) => p), { lr: 1e-4 }).step();
  const ms = performance.now() - t0;
  return {
    output: Float32Array.from(out.values()), loss: loss.item(), grads,
    params: new Map(named.map(([n, p]) => [n, Float32Array.from(p.values())])), ms,
  };
}

/** Largest norm-relative error between two steps, over output, loss, every gradient and parameter. */
export function netStepError(got: NetStep, want: NetStep): { worst: number; where: string } {
  let worst = relError(got.output, want.output), where = 'output';
  const check = (e: number, name: string): void => { if (!(e <= worst)) { worst = e; where = name; } };
  check(relError([got.loss], [want.loss]), 'loss');
  for (const [n, g] of want.grads) check(relError(got.grads.get(n) ?? [], g), `grad ${n}`);
  for (const [n, p] of want.params) check(relError(got.params.get(n) ?? [], p), `param ${n}`);
  return { worst, where };
}
