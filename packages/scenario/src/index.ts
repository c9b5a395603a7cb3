export * from './parse';
export * from './run/run-scenario';
export { matches, checkOrder, describeMatcher } from './run/matchers';
export * from './run/invariants';
