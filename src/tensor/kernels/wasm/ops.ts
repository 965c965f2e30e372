/**
 * JS drivers for the wasm kernels: they lay operands out in the arena, build the gather tables
 * that turn packing into im2col, and plan one command list per thread. One module per seam: plan.ts
 * (command lists, setup cache), gemm.ts, im2col.ts, winograd-conv.ts, direct.ts, conv.ts (entry points).
 */
export { Plan, split } from './plan.ts';
export { gemmWasm } from './gemm.ts';
export { conv2dGradInputWasm, conv2dGradWeightWasm, conv2dWasm } from './conv.ts';
export {
  type WinogradTile, checkWinogradTileEnv, parseWinogradTile, setWinograd, setWinogradTile, usesWinograd, usesWinogradGradWeight, winogradSettings,
} from './winograd-conv.ts';
