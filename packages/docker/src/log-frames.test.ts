import { describe, expect, it } from 'vitest';
import { demuxLogFrames } from './log-frames';

const frame = (stream: number, text: string | Buffer): Buffer => {
  const payload = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

describe('demuxLogFrames', () => {
  it('keeps stdout and stderr apart, in order', () => {
    const buf = Buffer.concat([frame(1, 'a\n'), frame(2, 'oops\n'), frame(1, 'b\n')]);
    expect(demuxLogFrames(buf)).toEqual({ stdout: 'a\nb\n', stderr: 'oops\n' });
  });

  it('joins a UTF-8 character split across two frames', () => {
    const euro = Buffer.from('€');
    const buf = Buffer.concat([frame(1, euro.subarray(0, 1)), frame(1, euro.subarray(1))]);
    expect(demuxLogFrames(buf).stdout).toBe('€');
  });

  it('ignores a truncated trailing header', () => {
    expect(demuxLogFrames(Buffer.concat([frame(1, 'x'), Buffer.from([1, 0, 0])]))).toEqual({ stdout: 'x', stderr: '' });
  });
});
