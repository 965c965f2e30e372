export { backward, grad, noGrad, isGradEnabled, record } from './engine.ts';
export * from './ops/index.ts';
export { gradCheck } from './gradcheck.ts';
