export { backward, grad, noGrad, isGradEnabled, record, releaseGraph } from './engine.ts';
export * from './ops/index.ts';
export { gradCheck } from './gradcheck.ts';
