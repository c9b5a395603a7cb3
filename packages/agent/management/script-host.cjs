'use strict';
/**
 * The thread the user's script runs in (management.cjs `startScriptHost`). It is started while
 * the management code still talks to the platform and downloads the code, so the thread's own
 * start (a Node environment of its own, tens of milliseconds) overlaps that wait instead of
 * adding to the run. It waits for the one message that names the script, then runs it as
 * Node runs a main module: `require.main === module`, `process.argv[1]` is the script,
 * ES modules and CommonJS alike. After that it holds nothing open: the thread ends when the
 * script's own work does, as a process would.
 */
const { parentPort } = require('node:worker_threads');
const { runMain } = require('node:module');

parentPort.once('message', ({ script }) => {
  parentPort.close();
  process.argv[1] = script;
  runMain(script);
});
