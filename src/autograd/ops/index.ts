export * from './elementwise.ts';
export * from './shape.ts';
export * from './linalg.ts';
export * from './conv.ts';
export * from './spatial.ts';
export * from './norm.ts';
