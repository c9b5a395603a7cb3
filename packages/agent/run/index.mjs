// ESM entry of @amlsim/run: the implementation is the CommonJS module, so a script mixing
// `import` and `require` shares one Run context (one step counter per metric name).
import cjs from './index.cjs';

export const Run = cjs.Run;
export default cjs;
