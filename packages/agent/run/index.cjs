'use strict';
/**
 * @amlsim/run — the run context a training script logs metrics with (S8.3 step 4, S8.4).
 *
 * Mirrors Azure ML SDK v1:
 *
 *     const { Run } = require('@amlsim/run');
 *     const run = Run.getContext();          // Run.get_context()
 *     run.log('loss', 0.25);                 // run.log(name, value)
 *     run.logList('accuracies', [0.5, 0.7]); // run.log_list(name, values)
 *     run.logRow('eval', { epoch: 1, f1: 0.8 });
 *     run.tag('framework', 'none');
 *
 * Inside amlsim the management code sets AMLSIM_METRICS_FILE; every call appends one JSON line
 * (a MetricRow of docs/control-plane.md) to it, synchronously, so nothing is lost when the
 * script exits or crashes right after logging. The management code writes the file back to the
 * platform after the script ends (POST /metrics). The script itself never talks to the network.
 *
 * Outside amlsim (no AMLSIM_METRICS_FILE) the context is an *offline run*, as in the SDK: the
 * metrics are printed to stdout and the script keeps working.
 *
 * Plain JavaScript, Node built-ins only: it is copied into FROM-scratch images.
 */

const fs = require('node:fs');
const crypto = require('node:crypto');

const MAX_NAME_LENGTH = 255;

/** @param {unknown} value */
function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return String(value);
  return `a ${typeof value}`;
}

/** A metric or tag name: a non-empty string of at most 255 characters. */
function checkName(method, what, name) {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`run.${method}: ${what} must be a non-empty string, got ${describe(name)}`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw new TypeError(`run.${method}: ${what} must be at most ${MAX_NAME_LENGTH} characters, got ${name.length}`);
  }
}

/** A scalar: a finite number, a string or a boolean (NaN/Infinity would not survive JSON). */
function isScalar(value) {
  if (typeof value === 'number') return Number.isFinite(value);
  return typeof value === 'string' || typeof value === 'boolean';
}

function checkScalar(method, what, value) {
  if (!isScalar(value)) {
    throw new TypeError(
      `run.${method}: ${what} must be a finite number, a string or a boolean, got ${describe(value)}`,
    );
  }
}

class Run {
  /**
   * Use Run.getContext(); the constructor exists for tests and tools.
   * @param {{ id?: string, experiment?: string, metricsFile?: string }} [options]
   *   no metricsFile = offline run (metrics printed to stdout)
   */
  constructor(options = {}) {
    const metricsFile = options.metricsFile || undefined;
    /** The run id (AZUREML_RUN_ID), or `OfflineRun_<uuid>` like the SDK's offline run. */
    this.id = options.id || `OfflineRun_${crypto.randomUUID()}`;
    /** The experiment name (AZUREML_ARM_PROJECT_NAME). */
    this.experiment = options.experiment || (metricsFile ? '' : 'offline');
    /** True when metrics are only printed (the script runs outside amlsim). */
    this.offline = !metricsFile;
    Object.defineProperty(this, '_metricsFile', { value: metricsFile });
    // Scalar steps count per name from 0, like the SDK's implicit step of run.log.
    Object.defineProperty(this, '_steps', { value: new Map() });
  }

  /**
   * The run the current process belongs to (SDK: Run.get_context()). Repeated calls return the
   * same object, so steps keep counting across modules of one script.
   * @returns {Run}
   */
  static getContext() {
    const env = process.env;
    const key = `${env.AMLSIM_METRICS_FILE || ''}\n${env.AZUREML_RUN_ID || ''}`;
    if (!current || current.key !== key) {
      const run = new Run({
        id: env.AZUREML_RUN_ID,
        experiment: env.AZUREML_ARM_PROJECT_NAME,
        metricsFile: env.AMLSIM_METRICS_FILE,
      });
      current = { key, run };
    }
    return current.run;
  }

  /**
   * Logs a scalar; each call for a name appends a row with the next step (0, 1, 2, …).
   * @param {string} name
   * @param {number | string | boolean} value
   */
  log(name, value) {
    checkName('log', 'name', name);
    checkScalar('log', `value of '${name}'`, value);
    const step = this._steps.get(name) ?? 0;
    this._steps.set(name, step + 1);
    this._append({ kind: 'scalar', name, value, step, at: now() }, `${name}=${value}`);
  }

  /**
   * Logs a list of scalars as one row (SDK: run.log_list).
   * @param {string} name
   * @param {Array<number | string | boolean>} values
   */
  logList(name, values) {
    checkName('logList', 'name', name);
    if (!Array.isArray(values)) {
      throw new TypeError(`run.logList: values of '${name}' must be an array, got ${describe(values)}`);
    }
    values.forEach((v, i) => checkScalar('logList', `values[${i}] of '${name}'`, v));
    const copy = [...values];
    this._append({ kind: 'list', name, values: copy, at: now() }, `${name}=${JSON.stringify(copy)}`);
  }

  /**
   * Logs a row of named scalars (SDK: run.log_row(name, **kwargs)).
   * @param {string} name
   * @param {Record<string, number | string | boolean>} row
   */
  logRow(name, row) {
    checkName('logRow', 'name', name);
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new TypeError(`run.logRow: row of '${name}' must be an object of scalars, got ${describe(row)}`);
    }
    const columns = Object.keys(row);
    if (columns.length === 0) throw new TypeError(`run.logRow: row of '${name}' must have at least one column`);
    const copy = {};
    for (const column of columns) {
      checkName('logRow', `column name of '${name}'`, column);
      checkScalar('logRow', `column '${column}' of '${name}'`, row[column]);
      copy[column] = row[column];
    }
    this._append({ kind: 'row', name, row: copy, at: now() }, `${name}=${JSON.stringify(copy)}`);
  }

  /**
   * Tags the run (SDK: run.tag(key, value)). Numbers and booleans are stored as strings.
   * @param {string} key
   * @param {string | number | boolean} [value] default ''
   */
  tag(key, value = '') {
    checkName('tag', 'key', key);
    checkScalar('tag', `value of tag '${key}'`, value);
    const text = String(value);
    this._append({ kind: 'tag', name: key, value: text, at: now() }, `tag ${key}=${text}`);
  }

  /** One MetricRow per line; appendFileSync so the row is on disk before the call returns. */
  _append(row, offlineText) {
    if (this._metricsFile) fs.appendFileSync(this._metricsFile, `${JSON.stringify(row)}\n`);
    else console.log(`[offline run] ${offlineText}`);
  }
}

/** @type {{ key: string, run: Run } | undefined} */
let current;

function now() {
  return new Date().toISOString();
}

module.exports = { Run, MAX_NAME_LENGTH };
