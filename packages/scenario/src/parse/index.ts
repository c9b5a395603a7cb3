import type { z } from 'zod';
import { CST, isScalar, LineCounter, parseDocument, Parser, visit, type Document, type YAMLError } from 'yaml';
import { checkPaths, pathRoots, type PathOptions, type PathRoots } from './file-paths';
import { formatIssue, ScenarioInvalidError, type IssueDraft, type ScenarioIssue } from './issues';
import { SourcePositions } from './positions';
import { checkReferences, type Declarations } from './references';
import { isRecord } from './rules';
import { scenarioFileSchema, tenantFileSchema } from './schemas';
import { parseStep, type StepDraft } from './steps';
import type { Scenario, Step } from './types';
import type { StepExpect } from './verbs';
import { draftsFromZod } from './zod-issues';

export { ScenarioInvalidError, formatIssue, type ScenarioIssue } from './issues';
export { NAMED_VERBS } from './references';
export { FILE_ARGS, confinePath, pathRoots, widenRoots, type Confined, type PathOptions, type PathRoots } from './file-paths';
export { parseDuration, durationSchema, positiveDurationSchema, MAX_DURATION_MS, MAX_DURATION_SECONDS, type Duration } from './durations';
export {
  BUILT_IN_ROLES,
  KNOWN_ERROR_CODES,
  KNOWN_REGIONS,
  KNOWN_RUN_STATUSES,
  errorCodeSchema,
  eventMatcherSchema,
  optionsSchema,
  principalNameSchema,
  regionSchema,
  resourceNameSchema,
  runStatusSchema,
  scenarioExpectSchema,
  scenarioFileSchema,
  stepIdSchema,
  subscriptionsSchema,
  tenantSchema,
} from './schemas';
export {
  FAULT_KINDS,
  IMPLEMENTED_FAULTS,
  IMPLEMENTED_VERBS,
  PROVISIONED_RESOURCES,
  VERBS,
  stepExpectSchemas,
  verbArgSchemas,
  type FaultKind,
  type StepExpect,
  type Verb,
  type VerbArgs,
} from './verbs';
export { isStepOf, type EventMatcher, type Scenario, type Step, type StepOf } from './types';

/** The subscription a scenario gets when it declares none (docs/scenarios.md). */
export const DEFAULT_SUBSCRIPTION = 'sub-1';

/** How to parse: which directories besides the scenario's own its paths may lead into. */
export type ParseOptions = PathOptions;

/**
 * Parses and validates a scenario file. Every problem is collected (not just the first) and
 * thrown as one ScenarioInvalidError whose issues point at `file:line:col`.
 *
 * Paths in the scenario (`source`, `path`, `scoringScript`, a dependencies file) must stay
 * inside the scenario file's directory, symlinks followed, unless `options.allowPaths` widens
 * it; the default is confined (docs/scenarios.md, "Paths").
 *
 * @param file the path of the scenario file (shown in messages; its directory is the root of
 *   the scenario's paths)
 */
export function parseScenario(text: string, file: string, options: ParseOptions = {}): Scenario {
  const { data, positions, fail, yamlIssues } = readYamlMap(text, file, 'a scenario file is a map with at least name, tenant and steps');

  const drafts: IssueDraft[] = [];
  const header = scenarioFileSchema.safeParse(data, { reportInput: true });
  if (!header.success) drafts.push(...draftsFromZod(header.error, scenarioFileSchema, []));

  const stepDrafts: StepDraft[] = [];
  (Array.isArray(data['steps']) ? data['steps'] : []).forEach((rawStep, index) => {
    const { step, issues } = parseStep(rawStep, index, positions);
    stepDrafts.push(step);
    drafts.push(...issues);
  });
  drafts.push(...checkReferences(stepDrafts, declarations(data), data['subscriptions']));
  const roots = pathRoots(file, options);
  drafts.push(...checkPaths(stepDrafts, roots));

  if (!header.success || drafts.length > 0 || yamlIssues.length > 0) return fail(drafts);
  return buildScenario(file, header.data, stepDrafts, roots);
}

/**
 * A YAML document read as a map, with what reports its problems at `file:line:col`: `fail`
 * throws one ScenarioInvalidError with the YAML's own problems and the drafts given.
 */
function readYamlMap(text: string, file: string, notAMap: string) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const positions = new SourcePositions(doc, lineCounter);

  const openers = unclosedOpeners(text);
  const yamlIssues = doc.errors.map((error) => yamlIssue(error, file, doc, positions, openers));
  // A function declaration (not an arrow) so that TypeScript narrows after calls to it.
  function fail(drafts: IssueDraft[]): never {
    throw new ScenarioInvalidError(file, sortIssues([...yamlIssues, ...drafts.map((d) => locate(d, file, positions))]));
  }
  // Duplicate keys leave a well-formed document behind, so validation can go on and report
  // more; after any other syntax error the data is not what the user meant.
  if (doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) fail([]);

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    fail([{ path: [], target: 'value', message: `cannot read the YAML: ${(error as Error).message}` }]);
  }
  if (!isRecord(data)) fail([{ path: [], target: 'value', message: notAMap }]);
  return { data, positions, fail, yamlIssues };
}

/** Who may sign in to `amlsim serve`: a tenant file's directory and subscriptions (their Owners). */
export type TenantFile = z.output<typeof tenantFileSchema> & { subscriptions: Record<string, { owners: string[] }> };

/**
 * Parses a tenant file (docs/azure.md "The tenant file"): the scenario language's `tenant:` and
 * `subscriptions:` keys, alone. Problems are thrown as one ScenarioInvalidError with
 * `file:line:col`, as for a scenario; an Owner must be a principal of the file. Without
 * `subscriptions`, `sub-1` is owned by the first principal, as in a scenario.
 */
export function parseTenantFile(text: string, file: string): TenantFile {
  const { data, fail, yamlIssues } = readYamlMap(text, file, 'a tenant file is a map with a tenant (and, optionally, subscriptions)');
  const parsed = tenantFileSchema.safeParse(data, { reportInput: true });
  const drafts: IssueDraft[] = parsed.success ? [] : draftsFromZod(parsed.error, tenantFileSchema, []);
  const principals = Object.keys(parsed.success ? parsed.data.tenant.principals : {});
  if (parsed.success) {
    for (const [sub, { owners }] of Object.entries(parsed.data.subscriptions ?? {})) {
      owners.forEach((owner, i) => {
        if (!principals.includes(owner)) {
          drafts.push({ path: ['subscriptions', sub, 'owners', i], target: 'value', message: `unknown principal '${owner}'; the tenant declares ${principals.join(', ')}` });
        }
      });
    }
  }
  if (!parsed.success || drafts.length > 0 || yamlIssues.length > 0) return fail(drafts);
  return { ...parsed.data, subscriptions: parsed.data.subscriptions ?? { [DEFAULT_SUBSCRIPTION]: { owners: [principals[0]!] } } };
}

/**
 * What the file declares, read from the raw data so a mistake in one part of the header does
 * not hide reference errors elsewhere. A part that cannot be read is left undefined, which
 * turns off the checks that depend on it (rather than reporting every use as undeclared).
 */
function declarations(raw: Record<string, unknown>): Declarations {
  const tenant = raw['tenant'];
  const principals = isRecord(tenant) && isRecord(tenant['principals']) ? Object.keys(tenant['principals']) : undefined;
  const subs = raw['subscriptions'];
  const subscriptions = subs === undefined ? [DEFAULT_SUBSCRIPTION] : isRecord(subs) ? Object.keys(subs) : undefined;
  const options = raw['options'];
  const clock = options === undefined ? 'real' : isRecord(options) ? (options['clock'] ?? 'real') : undefined;
  // An invalid clock is reported by the schema; advanceClock is not judged against it.
  return { principals, subscriptions, clock: clock === 'real' || clock === 'virtual' ? clock : undefined };
}

type Header = z.output<typeof scenarioFileSchema>;

function buildScenario(file: string, header: Header, stepDrafts: StepDraft[], paths: PathRoots): Scenario {
  const firstPrincipal = Object.keys(header.tenant.principals)[0]!;
  const subscriptions = header.subscriptions ?? { [DEFAULT_SUBSCRIPTION]: { owners: [firstPrincipal] } };
  const defaultSubscription = Object.keys(subscriptions)[0]!;

  const steps = stepDrafts.map((draft): Step => {
    let args = draft.args;
    // A workspace names its subscription explicitly in the normalized form, so the runner
    // never has to know the defaulting rule.
    if (draft.verb === 'createWorkspace' && isRecord(args)) args = { ...args, subscription: args['subscription'] ?? defaultSubscription };
    return {
      index: draft.index,
      line: draft.position.line,
      col: draft.position.col,
      verb: draft.verb!,
      args,
      ...(draft.as !== undefined ? { as: draft.as } : {}),
      ...(draft.id !== undefined ? { id: draft.id } : {}),
      expect: draft.expect as StepExpect,
    };
  });
  const ids = Object.fromEntries(steps.flatMap((s) => (s.id === undefined ? [] : [[s.id, { verb: s.verb, stepIndex: s.index }]])));

  return {
    file,
    name: header.name,
    cites: header.cites,
    tenant: header.tenant,
    subscriptions,
    options: header.options,
    steps,
    expect: header.expect,
    ids,
    paths,
  };
}

function locate(draft: IssueDraft, file: string, positions: SourcePositions): ScenarioIssue {
  const { target, ...rest } = draft;
  return { file, ...positions.at(draft.path, target), ...rest };
}

function yamlIssue(error: YAMLError, file: string, doc: Document, positions: SourcePositions, openers: Opener[]): ScenarioIssue {
  const position = positions.ofOffset(error.pos[0]);
  if (error.code === 'DUPLICATE_KEY') {
    const key = keyAt(doc, error.pos[0]);
    return { file, ...position, path: [], key, message: `duplicate key '${key}'; a key may appear only once in a map` };
  }
  if (error.code === 'MULTIPLE_DOCS') {
    return { file, ...position, path: [], message: "a scenario file holds one YAML document; remove the second one (after '---')" };
  }
  // The parser notices an unclosed bracket or quote where the file (or the indented block) ends;
  // the user has to look where it was opened.
  const kind = /^Flow map\b/.test(error.message) ? '{' : /^Flow sequence\b/.test(error.message) ? '[' : /^Missing closing "quote/.test(error.message) ? '"' : /^Missing closing 'quote/.test(error.message) ? "'" : undefined;
  const opener = kind === undefined ? undefined : claimOpener(openers, kind, error.pos[0]);
  if (opener !== undefined) {
    const what = OPENER_TEXT[opener.char];
    return { file, ...positions.ofOffset(opener.offset), path: [], message: `YAML syntax error: ${what} (noticed at line ${position.line}, col ${position.col})` };
  }
  return { file, ...position, path: [], message: `YAML syntax error: ${error.message}` };
}

type Opener = { offset: number; char: '{' | '[' | '"' | "'"; claimed?: boolean };

const OPENER_TEXT: Record<Opener['char'], string> = {
  '{': "the '{' here is never closed: end the map with '}' (lines that continue it must be indented deeper than its key)",
  '[': "the '[' here is never closed: end the list with ']' (lines that continue it must be indented deeper than its key)",
  '"': 'the \'"\' here opens a string that is never closed: end it with \'"\'',
  "'": "the \"'\" here opens a string that is never closed: end it with \"'\"",
};

/** Flow collections without their closing bracket and quoted strings without their closing quote. */
function unclosedOpeners(text: string): Opener[] {
  const found: Opener[] = [];
  for (const token of new Parser().parse(text)) {
    CST.visit(token as CST.Document, (item) => {
      for (const node of [item.key, item.value]) {
        if (node?.type === 'flow-collection') {
          const char = node.start.source as '{' | '[';
          const close = char === '{' ? '}' : ']';
          if (!node.end.some((t) => t.source === close)) found.push({ offset: node.start.offset, char });
        } else if (node?.type === 'double-quoted-scalar' || node?.type === 'single-quoted-scalar') {
          found.push({ offset: node.offset, char: node.type === 'double-quoted-scalar' ? '"' : "'" });
        }
      }
    });
  }
  return found.sort((a, b) => a.offset - b.offset);
}

/** The innermost unclaimed opener of `char` before `offset` (each error claims one). */
function claimOpener(openers: Opener[], char: Opener['char'], offset: number): Opener | undefined {
  const opener = openers.filter((o) => o.char === char && !o.claimed && o.offset < offset).at(-1);
  if (opener) opener.claimed = true;
  return opener;
}

/** The text of the map key starting at `offset` (the parser reports duplicates by offset only). */
function keyAt(doc: Document, offset: number): string {
  let key = '?';
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        key = String(pair.key.value);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return key;
}

function sortIssues(issues: ScenarioIssue[]): ScenarioIssue[] {
  const seen = new Set<string>();
  return issues
    .filter((issue) => {
      const line = formatIssue(issue);
      if (seen.has(line)) return false;
      seen.add(line);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.col - b.col);
}
