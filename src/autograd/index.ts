export { backward, grad, releaseGraph } from './engine.ts';
export { gradRecording, noGrad, record } from './tape.ts';
export * from './ops/index.ts';
export { gradCheck } from './gradcheck.ts';
