export * from './option-spec.js';
export * from './define-options.js';
export * from './option-schema.js';
export * from './command-line.js';
export * from './config-file.js';
export * from './units.js';
export * from './suggest.js';
