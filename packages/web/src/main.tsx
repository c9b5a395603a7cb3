import { render } from 'preact';
import { App } from './app';
import { LogClient } from './log';
import './style.css';

const log = new LogClient();
// The end-to-end tests and the browser benchmark read the page's copy of the log through this
// (test/dashboard.e2e.test.ts, bench/dashboard-bench.ts); nothing of the page depends on it.
(window as unknown as { amlsim: { log: LogClient } }).amlsim = { log };
render(<App log={log} />, document.getElementById('app')!);
void log.start();
