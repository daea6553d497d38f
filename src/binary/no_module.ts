// Single-executable build: stands in for optional native speed-ups that are not embedded
// (msgpackr-extract). Requiring it fails, as when the package is absent, and the requiring
// package falls back to plain JavaScript.
export {};
throw new Error('not embedded in the single executable');
