import { existsSync } from 'node:fs';

/** util-linux's setpriv (Essential on Debian, so normally there). */
const SETPRIV = '/usr/bin/setpriv';

/**
 * A command line that is SIGKILLed when this process dies, however it dies (kill -9 included):
 * through `setpriv --pdeathsig KILL`, which execs the program, so the pid is the program's own.
 * Without setpriv the command is returned as it is (and a crashed simulator's children are
 * left to the start-up sweep).
 */
export const dieWithParent = (command: string, args: readonly string[]): [string, string[]] =>
  existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, [...args]];
