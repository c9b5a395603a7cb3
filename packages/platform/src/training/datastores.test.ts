import { describe, expect, it } from 'vitest';
import type { WorkspaceRecord } from '@amlsim/core';
import { datastorePath, filesFingerprint, mountRunInputs, resolveRunInputs } from './datastores';

// S4.2: a run's inputs as the platform API takes them (SubmitRunArgs.inputs), checked against the
// workspace before anything of a run is recorded.

const ws = { workspace: 'ws1', datastores: { training: { container: 'training-data' }, raw: { container: 'raw-data' } } } as unknown as WorkspaceRecord;

describe('run inputs (S4.2)', () => {
  it('resolve to their datastore container, path and mode (mount by default)', () => {
    expect(resolveRunInputs(ws, { data: { datastore: 'training', path: '/iris/' }, copy: { datastore: 'raw', mode: 'download' } })).toEqual([
      { name: 'data', datastore: 'training', container: 'training-data', path: 'iris', mode: 'mount' },
      { name: 'copy', datastore: 'raw', container: 'raw-data', path: '', mode: 'download' },
    ]);
    expect(resolveRunInputs(ws, undefined)).toEqual([]);
  });

  it('an unknown datastore is ResourceNotFound naming those attached', () => {
    expect(() => resolveRunInputs(ws, { data: { datastore: 'nope' } })).toThrow(
      expect.objectContaining({ code: 'ResourceNotFound', message: "The datastore 'nope' was not found in workspace 'ws1' (attached: training, raw)." }),
    );
    const bare = { workspace: 'ws2', datastores: {} } as unknown as WorkspaceRecord;
    expect(() => resolveRunInputs(bare, { data: { datastore: 'nope' } })).toThrow(/attached: none; attach one with attachDatastore/);
  });

  it('a mode other than mount or download is BadRequest listing both', () => {
    expect(() => resolveRunInputs(ws, { data: { datastore: 'training', mode: 'copy' } })).toThrow(
      expect.objectContaining({ code: 'BadRequest', message: "Input 'data' has mode 'copy'; the modes are mount, download." }),
    );
  });

  it('an input name must be an environment-variable suffix, and a path may not leave the datastore', () => {
    expect(() => resolveRunInputs(ws, { '9lives': { datastore: 'training' } })).toThrow(/AZUREML_DATAREFERENCE_<name>/);
    expect(() => resolveRunInputs(ws, { data: { datastore: 'training', path: 'a/../../etc' } })).toThrow(expect.objectContaining({ code: 'BadRequest' }));
    expect(datastorePath('./a//b/', 'p')).toBe('a/b');
    expect(datastorePath(undefined, 'p')).toBe('');
  });

  it('no inputs: nothing is read or made', () => {
    expect(mountRunInputs(undefined as never, undefined as never, ws, 's', 'r', [])).toEqual([]);
  });

  it("a set of files has one fingerprint, whatever the order they come in, and it changes with a file's content", () => {
    const a = { path: 'a.csv', bytes: 3, sha256: '01' };
    const b = { path: 'meta/b.json', bytes: 5, sha256: '02' };
    expect(filesFingerprint([a, b])).toBe(filesFingerprint([b, a]));
    expect(filesFingerprint([a, { ...b, sha256: '03' }])).not.toBe(filesFingerprint([a, b]));
  });
});
