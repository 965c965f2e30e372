/**
 * svdd-ts's public API: `import { … } from 'svdd-ts'`. Everything exported here is typed and kept
 * stable; modules not reached from this file are internal.
 */

// ---------------------------------------------------------------------------------------------
// Engine layer: tensors, autograd, layers, optimisers and safetensors, enough to build and train
// a small network of one's own (the Deep SVDD networks are built from the same parts).

export { Tensor } from './tensor/tensor.ts';
export type { DType, FloatArray } from './tensor/kernels/types.ts';
export { tensorFromArray } from './tensor/tensor.ts';
export { full, ones, randNormal, randUniform, Rng, scalar, tensor, zeros } from './tensor/creation.ts';
export type { NestedArray, RngState } from './tensor/creation.ts';

export {
  abs, add, addScalar, batchNorm, contiguous, conv2d, convTranspose2d, div, elu, exp, flatten, leakyRelu, linear, log,
  matmul, max, maxPool2d, mean, mul, narrow, neg, permute, relu, reshape, scale, sigmoid, sqrt, square, sub, sum,
  transpose, upsampleNearest, variance,
} from './autograd/ops/index.ts';
export type { BatchNormState, ConvOptions } from './autograd/ops/index.ts';
export { backward, grad } from './autograd/engine.ts';
export { noGrad } from './autograd/tape.ts';
export { gradCheck } from './autograd/gradcheck.ts';
export type { GradCheckResult } from './autograd/gradcheck.ts';

export { Module } from './nn/module.ts';
export { BatchNorm, Conv2d, ConvTranspose2d, Linear } from './nn/layers.ts';
export type { ConvLayerOptions, LayerOptions } from './nn/layers.ts';
export { leakyReluGain, torchDefaultBias, torchDefaultWeight, uniformInPlace, xavierUniform } from './nn/init.ts';
export { Adam, MultiStepLR } from './nn/optim.ts';
export type { AdamOptions, AdamState } from './nn/optim.ts';

export { parseSafetensors, readSafetensors, SafetensorsError, serializeSafetensors, writeSafetensors } from './tensor/io/safetensors.ts';
export type { SafeDType, SafeFile, SafeTensor, TensorToWrite } from './tensor/io/safetensors.ts';

// The engine context: which backend runs the kernels (withBackend; 'auto' picks the fastest that
// starts), and storage scopes (tidy, trainStep) that hand a step's temporary buffers back.
export { backendChoices, BackendError } from './tensor/backend-registry.ts';
export { Engine, engine, tidy, withBackend } from './tensor/engine.ts';
export type { BackendChoice } from './tensor/engine.ts';
export { trainStep } from './nn/step.ts';
export type { StepOptimizer } from './nn/step.ts';

// ---------------------------------------------------------------------------------------------
// Estimator layer: Deep SVDD in the style of PyOD (fit / decisionFunction / predict / explain /
// save / load) on arrays of images [n, c, h, w], and the errors the library throws on purpose.

export { DeepSVDD } from './api/deep-svdd.ts';
export type { DeepSVDDOptions, EpochEvent, ExplainOptions, Explanation, ScoreName, ThresholdOption } from './api/deep-svdd.ts';
export { asNdArray } from './api/images.ts';
export type { ImageArray, ImageInput } from './api/images.ts';
export { loadImageFolder } from './api/folder.ts';
export type { ImageFolderData } from './api/folder.ts';
export type { ResizeMode } from './svdd/data/folder.ts';
export { DataError, InputError, ModelError, NotFittedError, OptionError, RunError, SvddError, TrainingDivergedError } from './api/errors.ts';
export type { ModelMeta, DecisionRule, ThresholdRecord } from './svdd/model.ts';
export type { DecisionThreshold } from './svdd/predict.ts';
export type { NetName } from './svdd/networks.ts';
export type { MethodName } from './svdd/explain/methods.ts';
export type { CamTarget } from './svdd/gradcam.ts';
