import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { IssueDraft } from './issues';
import { isRecord } from './rules';
import type { StepDraft } from './steps';
import type { Verb } from './verbs';

/**
 * Argument keys that name a file or directory on the machine running amlsim, per verb. They
 * resolve inside the scenario file's directory (its "root"): a scenario is a file someone may
 * hand you, and it must not be able to upload your ~/.ssh as a snapshot or a model.
 */
export const FILE_ARGS: { [V in Verb]?: readonly string[] } = {
  snapshot: ['source'],
  submitRun: ['source'],
  registerModel: ['path'],
  uploadToDatastore: ['source'],
  createImage: ['scoringScript', 'dependencies'],
};

/** Where a scenario's paths may lead: its own directory and the roots the user widened it to. */
export type PathRoots = {
  /** The scenario file's directory; relative paths resolve against it. */
  base: string;
  /** Real paths (symlinks resolved) of every directory a path may lead into, `base`'s first. */
  roots: string[];
  /** The same directories as given (absolute), to tell a '..' that leaves from a symlink that does. */
  given: string[];
};

/** Options of parseScenario that concern paths. */
export type PathOptions = {
  /**
   * Directories outside the scenario's own that its paths may also lead into (the CLI's
   * `--allow-path`). None by default: a scenario is confined to its directory.
   */
  allowPaths?: readonly string[];
};

export function pathRoots(file: string, options: PathOptions = {}): PathRoots {
  const base = resolve(dirname(file));
  const given = [base, ...(options.allowPaths ?? []).map((p) => resolve(p))];
  return { base, roots: [...new Set(given.map((p) => realPath(p)))], given };
}

/** `at` with more directories a path may lead into (runScenario's `allowPaths`). */
export function widenRoots(at: PathRoots, allowPaths: readonly string[] = []): PathRoots {
  if (allowPaths.length === 0) return at;
  const given = [...at.given, ...allowPaths.map((p) => resolve(p))];
  return { base: at.base, roots: [...new Set([...at.roots, ...given.map((p) => realPath(p))])], given };
}

export type Confined = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Resolves `written` (a path as the scenario gives it) against the scenario's directory and
 * says whether it stays inside a root once every symlink on the way is followed. A path that
 * does not exist yet is judged by the part that does (a missing model file is the platform's
 * ResourceNotFound to show, not a parse error).
 */
export function confinePath(written: string, at: PathRoots): Confined {
  const path = isAbsolute(written) ? resolve(written) : resolve(at.base, written);
  const real = realPath(path);
  if (at.roots.some((root) => inside(real, root))) return { ok: true, path };
  const where = rootsText(at);
  const widen = 'to allow it, widen the root explicitly (amlsim run --allow-path <dir>, or the allowPaths option)';
  if (isAbsolute(written)) return { ok: false, reason: `is an absolute path outside ${where}; ${widen}` };
  if (![...at.given, ...at.roots].some((root) => inside(path, root))) {
    return { ok: false, reason: `leads outside ${where} (through '..'); paths are relative to the scenario file and stay inside its directory; ${widen}` };
  }
  return { ok: false, reason: `leads through a symbolic link to '${real}', outside ${where}; ${widen}` };
}

/** Path issues of every step: file arguments confined to the roots, `script` inside its source. */
export function checkPaths(steps: readonly StepDraft[], at: PathRoots): IssueDraft[] {
  return steps.flatMap((step) => {
    if (step.verb === undefined || !isRecord(step.rawArgs)) return [];
    const args = step.rawArgs;
    const base = [...step.path, step.verb];
    const issues: IssueDraft[] = [];
    for (const key of FILE_ARGS[step.verb] ?? []) {
      const value = args[key];
      if (typeof value !== 'string' || value === '') continue; // a list of packages, or a type error reported elsewhere
      const confined = confinePath(value, at);
      if (!confined.ok) issues.push({ path: [...base, key], target: 'value', key, message: `'${key}' in ${step.verb} ('${value}') ${confined.reason}` });
    }
    // The script is a file of the snapshot, named relative to its root (S8.3).
    const script = args['script'];
    if (step.verb === 'submitRun' && typeof script === 'string' && script !== '' && !staysInside(script)) {
      issues.push({
        path: [...base, 'script'],
        target: 'value',
        key: 'script',
        message: `'script' in submitRun ('${script}') must name a file inside the run's source, relative to it (e.g. train.js or src/train.js), not an absolute path or one that leaves it with '..'`,
      });
    }
    return issues;
  });
}

/** Whether a relative path stays inside the directory it is relative to, by its text alone. */
function staysInside(written: string): boolean {
  if (isAbsolute(written) || /^[a-z]:/i.test(written) || written.startsWith('\\')) return false;
  const back = relative('/r', join('/r', written));
  return back !== '..' && !back.startsWith(`..${sep}`);
}

function inside(path: string, root: string): boolean {
  const back = relative(root, path);
  return back === '' || (back !== '..' && !back.startsWith(`..${sep}`) && !isAbsolute(back));
}

function rootsText(at: PathRoots): string {
  const [own, ...more] = at.roots;
  return more.length === 0 ? `the scenario's directory (${own})` : `the scenario's directory (${own}) and the allowed paths (${more.join(', ')})`;
}

/**
 * The real path of `path` with every symlink resolved, also when its end does not exist: the
 * longest existing prefix is resolved (a dangling link by reading it) and the rest appended.
 */
export function realPath(path: string, depth = 0): string {
  try {
    return realpathSync.native(path);
  } catch {
    // Fall through: resolve what exists.
  }
  if (depth > 40) return path; // a symlink loop; nothing under it can be read anyway
  try {
    if (lstatSync(path).isSymbolicLink()) return realPath(resolve(dirname(path), readlinkSync(path)), depth + 1);
  } catch {
    // Not there at all: judge by its parent.
  }
  const parent = dirname(path);
  if (parent === path) return path;
  return join(realPath(parent, depth + 1), path.slice(parent.length).replace(/^[\\/]+/, ''));
}
