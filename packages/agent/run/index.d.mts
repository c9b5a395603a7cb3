import cjs from './index.cjs';

export declare const Run: typeof cjs.Run;
export type Run = InstanceType<typeof cjs.Run>;
export default cjs;
