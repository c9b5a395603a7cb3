/** The run-context library (@amlsim/run) on its own: online rows, offline mode, input validation. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_NAME_LENGTH, Run } from '../run/index.cjs';
import esm, { Run as EsmRun } from '../run/index.mjs';
import { RUN_MODULE_DIR } from './index';

let dir: string;
const savedEnv = { ...process.env };

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'amlsim-run-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const key of ['AMLSIM_METRICS_FILE', 'AZUREML_RUN_ID', 'AZUREML_ARM_PROJECT_NAME']) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
  vi.restoreAllMocks();
});

function rowsOf(file: string) {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

describe('Run.getContext() inside amlsim (AMLSIM_METRICS_FILE set)', () => {
  it('appends MetricRows as JSON lines with per-name steps', () => {
    const file = path.join(dir, 'metrics.jsonl');
    process.env.AMLSIM_METRICS_FILE = file;
    process.env.AZUREML_RUN_ID = 'run-1';
    process.env.AZUREML_ARM_PROJECT_NAME = 'exp-1';
    const run = Run.getContext();

    expect(run.id).toBe('run-1');
    expect(run.experiment).toBe('exp-1');
    expect(run.offline).toBe(false);
    expect(Run.getContext()).toBe(run); // one context per process
    expect(EsmRun.getContext()).toBe(run); // shared with ESM importers
    expect(esm.Run).toBe(Run);

    run.log('loss', 0.5);
    run.log('acc', 'high');
    run.log('loss', 0.25);
    run.log('done', true);
    run.logList('values', [1, 'two', false]);
    run.logRow('eval', { epoch: 2, f1: 0.9 });
    run.tag('team', 'ml');
    run.tag('flag');

    const rows = rowsOf(file);
    for (const row of rows) expect(new Date(row.at).toISOString()).toBe(row.at);
    expect(rows.map(({ at: _at, ...rest }) => rest)).toEqual([
      { kind: 'scalar', name: 'loss', value: 0.5, step: 0 },
      { kind: 'scalar', name: 'acc', value: 'high', step: 0 },
      { kind: 'scalar', name: 'loss', value: 0.25, step: 1 },
      { kind: 'scalar', name: 'done', value: true, step: 0 },
      { kind: 'list', name: 'values', values: [1, 'two', false] },
      { kind: 'row', name: 'eval', row: { epoch: 2, f1: 0.9 } },
      { kind: 'tag', name: 'team', value: 'ml' },
      { kind: 'tag', name: 'flag', value: '' },
    ]);
  });

  it('gives a new context when the environment names another run', () => {
    process.env.AMLSIM_METRICS_FILE = path.join(dir, 'a.jsonl');
    process.env.AZUREML_RUN_ID = 'run-a';
    const a = Run.getContext();
    process.env.AMLSIM_METRICS_FILE = path.join(dir, 'b.jsonl');
    process.env.AZUREML_RUN_ID = 'run-b';
    const b = Run.getContext();
    expect(b).not.toBe(a);
    expect(b.id).toBe('run-b');
  });
});

describe('offline run (no AMLSIM_METRICS_FILE)', () => {
  it('prints metrics to stdout and writes nothing', () => {
    delete process.env.AMLSIM_METRICS_FILE;
    delete process.env.AZUREML_RUN_ID;
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    const run = Run.getContext();

    expect(run.offline).toBe(true);
    expect(run.id).toMatch(/^OfflineRun_[0-9a-f-]{36}$/);
    expect(run.experiment).toBe('offline');
    run.log('loss', 0.5);
    run.logList('values', [1, 2]);
    run.logRow('eval', { f1: 0.9 });
    run.tag('team', 'ml');
    expect(lines).toEqual([
      '[offline run] loss=0.5',
      '[offline run] values=[1,2]',
      '[offline run] eval={"f1":0.9}',
      '[offline run] tag team=ml',
    ]);
  });

  it('works in a plain `node` process outside amlsim', () => {
    const script = `
      const { Run } = require(${JSON.stringify(path.join(RUN_MODULE_DIR, 'index.cjs'))});
      const run = Run.getContext();
      run.log('loss', 0.5);
      console.log('still running');
    `;
    const env = { PATH: process.env.PATH ?? '' };
    const out = execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
    expect(out).toBe('[offline run] loss=0.5\nstill running\n');
  });
});

describe('input validation', () => {
  const run = () => new Run({ id: 'r', metricsFile: path.join(dir, 'm.jsonl') });

  it.each<[string, () => void, RegExp]>([
    ['empty name', () => run().log('', 1), /run\.log: name must be a non-empty string, got a string/],
    ['non-string name', () => run().log(42 as unknown as string, 1), /run\.log: name must be a non-empty string, got 42/],
    ['long name', () => run().log('n'.repeat(MAX_NAME_LENGTH + 1), 1), /at most 255 characters, got 256/],
    ['object value', () => run().log('x', {} as unknown as number), /value of 'x' must be a finite number, a string or a boolean, got a object/],
    ['null value', () => run().log('x', null as unknown as number), /got null/],
    ['undefined value', () => run().log('x', undefined as unknown as number), /got a undefined/],
    ['NaN', () => run().log('x', Number.NaN), /got NaN/],
    ['Infinity', () => run().log('x', Number.POSITIVE_INFINITY), /got Infinity/],
    ['list not an array', () => run().logList('l', 'abc' as unknown as number[]), /run\.logList: values of 'l' must be an array, got a string/],
    ['list with an object', () => run().logList('l', [1, [2]] as unknown as number[]), /values\[1\] of 'l' must be .* got an array/],
    ['row not an object', () => run().logRow('r', [1] as unknown as Record<string, number>), /run\.logRow: row of 'r' must be an object of scalars, got an array/],
    ['empty row', () => run().logRow('r', {}), /row of 'r' must have at least one column/],
    ['row with a bad column', () => run().logRow('r', { a: 1, b: null as unknown as number }), /column 'b' of 'r' must be/],
    ['tag without key', () => run().tag(''), /run\.tag: key must be a non-empty string/],
    ['tag with an object', () => run().tag('k', {} as unknown as string), /value of tag 'k' must be/],
  ])('throws a TypeError for %s', (_what, call, message) => {
    expect(call).toThrow(TypeError);
    expect(call).toThrow(message);
  });

  it('accepts a 255-character name and writes nothing for a refused call', () => {
    const file = path.join(dir, 'm.jsonl');
    const r = new Run({ id: 'r', metricsFile: file });
    expect(() => r.log('x', Number.NaN)).toThrow(TypeError);
    r.log('n'.repeat(MAX_NAME_LENGTH), 1);
    r.log('x', 2);
    expect(rowsOf(file).map((row) => [row.name.length, row.step])).toEqual([[255, 0], [1, 0]]);
  });
});
