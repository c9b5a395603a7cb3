/**
 * amlsim scoring — loading a scoring script (S8.5), shared by server.mjs (a web-service
 * replica) and check-script.mjs (the image build's check).
 *
 * The scoring-script contract: a JS module, CommonJS or ESM (Node's own rules: .cjs / .mjs,
 * or .js per the nearest package.json "type"), exporting
 *   - `init()`      optional, may be async: loads the model from AZUREML_MODEL_DIR
 *   - `run(input)`  may be async: `input` is the request's parsed JSON body, the return value
 *                   is the JSON response body
 * either as named exports or as properties of the default export / `module.exports`.
 *
 * Plain JavaScript, Node built-ins only (FROM-scratch images: the node binary and busybox).
 */

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A failure with a code; `detail` is printed above the one-line summary (code excerpt, stack). */
export class ScoringError extends Error {
  /** @param {string} code @param {string} message @param {string} [detail] */
  constructor(code, message, detail) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

/** How long `node --check` may take to locate an ESM syntax error. */
const CHECK_TIMEOUT_MS = 10_000;
/** Longest source line shown under a syntax error (minified code has very long lines). */
const MAX_EXCERPT = 160;

/** `message` of a thrown value, whatever was thrown. */
export function messageOf(err) {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && typeof err.message === 'string') return err.message;
  try {
    return typeof err === 'string' ? err : String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

/** `Name: message` on one line (the summary line must stay one line). */
export function oneLine(text) {
  return String(text).replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** The stack without Node's internal frames, or the message when there is no stack. */
export function stackOf(err) {
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : messageOf(err);
  return stack
    .split('\n')
    .filter((line) => !/^\s+at .*\bnode:internal\//.test(line))
    .join('\n');
}

/**
 * Node's "arrow" block — `<file>:<line>\n<source line>\n<caret line>` — parsed from a stack
 * (CommonJS syntax errors carry it) or from `node --check` output.
 */
function parseArrow(text) {
  const m = /^(.+?):(\d+)\r?\n(.*)\r?\n( *\^+) *\r?$/m.exec(text);
  if (!m) return undefined;
  let file = m[1];
  if (file.startsWith('file://')) {
    try {
      file = fileURLToPath(file);
    } catch {
      // keep the URL
    }
  }
  let code = m[3];
  let caret = m[4];
  const column = caret.indexOf('^') + 1;
  if (code.length > MAX_EXCERPT) {
    const start = Math.max(0, Math.min(column - 1 - MAX_EXCERPT / 2, code.length - MAX_EXCERPT));
    code = `${start > 0 ? '…' : ''}${code.slice(start, start + MAX_EXCERPT)}${start + MAX_EXCERPT < code.length ? '…' : ''}`;
    caret = `${' '.repeat(column - 1 - start + (start > 0 ? 1 : 0))}^`;
  }
  return { file, line: Number(m[2]), column, excerpt: `${code}\n${caret}` };
}

/** stderr of `node <args…>` when it fails, else undefined. */
function nodeFailure(args) {
  const child = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    timeout: CHECK_TIMEOUT_MS,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return child.status !== 0 && typeof child.stderr === 'string' ? child.stderr : undefined;
}

/**
 * Where a syntax error is. CommonJS errors carry it in their stack; ESM syntax errors caught
 * from import() lose it (Node 20 prints it only for an uncaught error). So: `node --check` on
 * the script, which finds it if it is in the script itself; else a child that imports the
 * script and lets the error go uncaught, so Node prints the file of the module that holds it.
 * (A syntax error stops the module graph before any of it runs, unless the script imports
 * the broken module dynamically.)
 */
function locateSyntaxError(err, scriptPath) {
  const fromStack = parseArrow(String(err && err.stack ? err.stack : ''));
  if (fromStack) return fromStack;
  const check = nodeFailure(['--check', scriptPath]);
  if (check !== undefined) return parseArrow(check);
  const url = pathToFileURL(scriptPath).href;
  const uncaught = nodeFailure(['--input-type=module', '--eval', `await import(${JSON.stringify(url)});`]);
  return uncaught === undefined ? undefined : parseArrow(uncaught);
}

function syntaxFailure(err, scriptPath) {
  const where = locateSyntaxError(err, scriptPath);
  let message = where
    ? `${where.file}:${where.line}:${where.column}: ${oneLine(messageOf(err))}${where.file === scriptPath ? '' : ` (imported by ${scriptPath})`}`
    : `${oneLine(messageOf(err))} in a module that ${scriptPath} imports (run node --check on it to find where)`;
  if (/Cannot use import statement outside a module|Unexpected token 'export'/.test(messageOf(err))) {
    message += ' (an ES module: name it .mjs, or set "type": "module" in its package.json)';
  }
  return new ScoringError('ScoringScriptSyntaxError', message, where ? `${where.file}:${where.line}\n${where.excerpt}` : undefined);
}

function typeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  return t === 'object' ? 'an object' : `a ${t}`;
}

/** The exported names, for the "does not export run" message. */
function exportedNames(ns) {
  const names = new Set(Object.keys(ns).filter((k) => k !== 'default'));
  const def = ns.default;
  if (def && (typeof def === 'object' || typeof def === 'function')) {
    for (const k of Object.keys(def)) names.add(k);
  }
  return [...names].sort();
}

/** `name` from the named exports, else from the default export (module.exports of a CommonJS script). */
function pick(ns, name) {
  if (ns[name] !== undefined && ns[name] !== null) return { owner: ns, value: ns[name] };
  const def = ns.default;
  if (def && (typeof def === 'object' || typeof def === 'function') && def[name] !== undefined && def[name] !== null) {
    return { owner: def, value: def[name] };
  }
  return undefined;
}

/**
 * Loads the scoring script and returns its entry points, bound to the object that exported
 * them. Throws a ScoringError: ScoringScriptNotFound, ScoringScriptSyntaxError,
 * ScoringScriptLoadFailed (a throw at load time, a missing dependency) or ScoringScriptInvalid
 * (no run function, init not a function).
 *
 * @param {string} scriptPath
 * @returns {Promise<{ path: string, run: (input: unknown) => unknown, init: (() => unknown) | undefined, exports: string[] }>}
 */
export async function loadScoringScript(scriptPath) {
  const file = path.resolve(scriptPath);
  let stat;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new ScoringError('ScoringScriptNotFound', `scoring script ${file} not found (${err.code ?? messageOf(err)})`);
  }
  if (!stat.isFile()) throw new ScoringError('ScoringScriptNotFound', `scoring script ${file} is not a file`);

  let ns;
  try {
    ns = await import(pathToFileURL(file).href);
  } catch (err) {
    if (err instanceof SyntaxError || (err && err.name === 'SyntaxError')) throw syntaxFailure(err, file);
    const name = err instanceof Error ? err.name : 'Error';
    throw new ScoringError('ScoringScriptLoadFailed', `loading ${file} failed: ${name}: ${oneLine(messageOf(err))}`, stackOf(err));
  }

  const exports = exportedNames(ns);
  const run = pick(ns, 'run');
  if (!run) {
    throw new ScoringError(
      'ScoringScriptInvalid',
      `${file} does not export a run(input) function (${exports.length ? `it exports: ${exports.join(', ')}` : 'it exports nothing'})`,
    );
  }
  if (typeof run.value !== 'function') {
    throw new ScoringError('ScoringScriptInvalid', `${file} exports run, but it is ${typeName(run.value)}, not a function`);
  }
  const init = pick(ns, 'init');
  if (init && typeof init.value !== 'function') {
    throw new ScoringError('ScoringScriptInvalid', `${file} exports init, but it is ${typeName(init.value)}, not a function`);
  }
  return {
    path: file,
    run: (input) => run.value.call(run.owner, input),
    init: init ? () => init.value.call(init.owner) : undefined,
    exports,
  };
}

/**
 * Prints a failure to stderr — its detail first, then one summary line
 * `amlsim scoring: <code>: <message>`, always the last line — and exits with `exitCode`.
 */
export function fail(err, exitCode = 1) {
  const code = err instanceof ScoringError ? err.code : 'ScoringServerFailed';
  const detail = err instanceof ScoringError ? err.detail : stackOf(err);
  const message = err instanceof ScoringError ? err.message : messageOf(err);
  if (detail) process.stderr.write(`${detail.replace(/\n*$/, '')}\n`);
  process.stderr.write(`amlsim scoring: ${code}: ${oneLine(message)}\n`);
  process.exit(exitCode);
}
