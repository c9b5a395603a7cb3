import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { SimError } from '@amlsim/core';
import { CliError, EXIT_CODES, exitCodeOf } from './main';

const quiet = () => {
  const lines: string[] = [];
  return { lines, print: (line: string) => void lines.push(line) };
};

describe('exitCodeOf', () => {
  it('gives distinct codes: 0, 1, 2, 64 (usage), 69 (no Docker), 70 (internal), 75 (data dir in use), 130/143 (SIGINT/SIGTERM)', () => {
    expect(new Set(Object.values(EXIT_CODES)).size).toBe(Object.keys(EXIT_CODES).length);
    expect(EXIT_CODES).toEqual({ ok: 0, expectationFailed: 1, invalidFile: 2, usage: 64, dockerUnavailable: 69, internal: 70, dataDirLocked: 75, interrupted: 130, terminated: 143 });
  });

  it('maps a data dir held by another simulator to 75 (EX_TEMPFAIL)', () => {
    const q = quiet();
    expect(exitCodeOf(new SimError('DataDirLocked', 'The data dir /d is in use by another simulator (pid 4242 on h, since t)'), q.print)).toBe(75);
    expect(q.lines.join('\n')).toContain('pid 4242');
  });

  it('maps commander errors to 64, and --help/--version to 0', () => {
    const q = quiet();
    expect(exitCodeOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), q.print)).toBe(64);
    expect(exitCodeOf(new CommanderError(0, 'commander.version', '0.1.0'), q.print)).toBe(0);
    expect(q.lines).toEqual([]); // commander printed its own message
  });

  it('maps a missing Docker engine to 69 and an unreadable event log to 2, printing code and message', () => {
    const q = quiet();
    expect(exitCodeOf(new SimError('DockerUnavailable', 'No Docker engine answered at /x.sock.'), q.print)).toBe(69);
    expect(exitCodeOf(new SimError('StoreUnreadable', "The event store 'e.sqlite' cannot be opened."), q.print)).toBe(2);
    expect(q.lines.join('\n')).toContain('DockerUnavailable: No Docker engine answered at /x.sock.');
  });

  it('uses the code a CliError carries', () => {
    const q = quiet();
    expect(exitCodeOf(new CliError('no event log at /d/events.sqlite', EXIT_CODES.invalidFile), q.print)).toBe(2);
    expect(q.lines.join('\n')).toContain('no event log at /d/events.sqlite');
  });

  it('calls anything else an internal error (70), with its stack, and asks for a report', () => {
    const q = quiet();
    expect(exitCodeOf(new TypeError("Cannot read properties of undefined (reading 'x')"), q.print)).toBe(70);
    expect(q.lines.join('\n')).toMatch(/internal error \(this is a bug in amlsim; please report it.*\n.*TypeError: Cannot read properties/);
    expect(exitCodeOf('a string thrown', q.print)).toBe(70);
  });
});
