/** A data path, as zod reports it: keys and list indexes from the top of the file. */
export type DataPath = (string | number)[];

/** Path of step `index` in the file. */
export function stepPath(index: number): DataPath {
  return ['steps', index];
}

// Inside a step, the file position already says which step; naming the verb is enough context.
function withinStep(path: readonly (string | number)[]): readonly (string | number)[] | undefined {
  return path[0] === 'steps' && typeof path[1] === 'number' ? path.slice(2) : undefined;
}

function label(segments: readonly (string | number)[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

/**
 * Splits a path into the key it ends with (`region`, `actions[0]`) and the context that key is
 * in (`createWorkspace`, `tenant.principals.alice`, `the step`, `the scenario`), for messages
 * like "unknown key 'x' in createWorkspace".
 */
export function describePath(path: readonly (string | number)[]): { key: string; context: string } {
  const inStep = withinStep(path);
  const relative = inStep ?? path;
  let last = relative.length - 1;
  while (last >= 0 && typeof relative[last] === 'number') last--;
  const key = last < 0 ? label(relative) : label(relative.slice(last));
  const contextSegments = last < 0 ? [] : relative.slice(0, last);
  const context = contextSegments.length > 0 ? label(contextSegments) : inStep ? 'the step' : 'the scenario';
  return { key, context };
}

/** The context a key directly under `parent` is in: the label of `parent` itself. */
export function contextOf(parent: readonly (string | number)[]): string {
  const inStep = withinStep(parent);
  const relative = inStep ?? parent;
  return relative.length > 0 ? label(relative) : inStep ? 'the step' : 'the scenario';
}
