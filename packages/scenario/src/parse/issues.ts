import type { Target } from './positions';

/** One problem found in a scenario file, with the position a user needs to fix it. */
export type ScenarioIssue = {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
  /** Data path of the offending key or value, e.g. `['steps', 2, 'createWorkspace', 'region']`. */
  path: (string | number)[];
  /** The offending (or missing) key, when there is one. */
  key?: string;
  /** The whole explanation, including what is allowed and the suggestion. */
  message: string;
  allowed?: string[];
  /** The nearest valid name, for a typo. */
  suggestion?: string;
};

/**
 * An issue before it has a position: validators work on data paths; the parser resolves
 * positions against the YAML source once, at the end.
 */
export type IssueDraft = Omit<ScenarioIssue, 'file' | 'line' | 'col'> & { target: Target };

/** `file:line:col: message` — the shape editors and terminals turn into links. */
export function formatIssue(issue: ScenarioIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.message}`;
}

/** The scenario file is invalid (`amlsim run` exits 2). `message` lists every issue, one per line. */
export class ScenarioInvalidError extends Error {
  override readonly name = 'ScenarioInvalidError';

  constructor(
    readonly file: string,
    readonly issues: ScenarioIssue[],
  ) {
    super(issues.map(formatIssue).join('\n'));
  }
}
