/** Runs only the append rows of `pnpm bench` (bench/store-bench.ts), for iterating on the store. */
import { benchAppend, fmt } from './store-bench';

for (const r of await benchAppend()) console.log(`${r.name}  store ${fmt(r.eventsPerSecond)}  raw ${fmt(r.baselineEventsPerSecond)}  ${r.ratio.toFixed(2)}x`);
