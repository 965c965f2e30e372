import type { Backend, KernelSet } from '../types.ts';
import { gemmTs } from './gemm.ts';
import { conv2dTs, conv2dGradInputTs, conv2dGradWeightTs } from './conv.ts';
import { binaryTs, reduceTs, unaryTs, unaryGradTs } from './elementwise.ts';
import {
  batchNormGradTs, channelMomentsTs, channelNormalizeTs, leakyMaxPool2dGradTs, leakyMaxPool2dTs, maxPool2dGradTs, maxPool2dTs, normLeakyMaxPool2dTs,
  upsampleNearestGradTs, upsampleNearestTs,
} from './spatial.ts';

/** The plain-TypeScript kernels: readable reference, float32 and float64, and fallback for every backend. */
export const tsKernels: KernelSet = {
  binary: binaryTs, reduce: reduceTs,
  gemm: gemmTs,
  conv2d: conv2dTs, conv2dGradInput: conv2dGradInputTs, conv2dGradWeight: conv2dGradWeightTs,
  maxPool2d: maxPool2dTs, maxPool2dGrad: maxPool2dGradTs,
  leakyMaxPool2d: leakyMaxPool2dTs, leakyMaxPool2dGrad: leakyMaxPool2dGradTs, normLeakyMaxPool2d: normLeakyMaxPool2dTs,
  upsampleNearest: upsampleNearestTs, upsampleNearestGrad: upsampleNearestGradTs,
  unary: unaryTs, unaryGrad: unaryGradTs,
  channelMoments: channelMomentsTs, channelNormalize: channelNormalizeTs, batchNormGrad: batchNormGradTs,
};

export const tsBackend: Backend = { name: 'ts', kernels: { float32: tsKernels, float64: tsKernels } };
