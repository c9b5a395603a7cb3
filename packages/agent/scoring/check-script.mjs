/**
 * amlsim scoring — checks a scoring script without serving it (S8.5: the image build runs it,
 * so that a broken scoring script fails the image with its error).
 *
 *   node check-script.mjs <scoring script>      (or AMLSIM_SCORING_SCRIPT when no argument)
 *
 * Loads the script (its top-level code runs; init() is not called) and checks that it exports
 * a `run` function and, if it exports `init`, that init is a function too.
 *   exit 0: stdout `[amlsim scoring] <path>: valid scoring script (exports …)`
 *   exit 1: stderr holds the detail (e.g. the source line of a syntax error) and, as its last
 *           line, `amlsim scoring: <code>: <message>` — codes ScoringScriptNotFound,
 *           ScoringScriptSyntaxError (message starts with <file>:<line>:<column>),
 *           ScoringScriptLoadFailed, ScoringScriptInvalid, ScoringScriptLoadTimeout
 *   exit 2: no script given
 *
 * Plain JavaScript, Node built-ins only (FROM-scratch images: the node binary and busybox).
 */

import { ScoringError, fail, loadScoringScript } from './load.mjs';

/** A script whose top-level code never settles (e.g. awaits forever) fails the check. */
const LOAD_TIMEOUT_MS = 30_000;

async function main() {
  const script = process.argv[2] || process.env.AMLSIM_SCORING_SCRIPT;
  if (!script) {
    fail(new ScoringError('InvalidConfiguration', 'usage: node check-script.mjs <scoring script>'), 2);
    return;
  }
  // The timer also keeps the process alive while an import awaits something that never comes.
  const timer = setTimeout(() => {
    fail(new ScoringError('ScoringScriptLoadTimeout', `loading ${script} did not finish within ${LOAD_TIMEOUT_MS} ms`));
  }, LOAD_TIMEOUT_MS);
  const loaded = await loadScoringScript(script);
  clearTimeout(timer);
  process.stdout.write(`[amlsim scoring] ${loaded.path}: valid scoring script (exports ${loaded.exports.join(', ')})\n`);
  // The script's top-level code may have left timers or sockets open: don't wait for them.
  process.exit(0);
}

main().catch((err) => fail(err, 1));
