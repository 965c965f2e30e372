export * from './module.ts';
export * from './layers.ts';
export * from './init.ts';
export * from './optim.ts';
export * from './step.ts';
