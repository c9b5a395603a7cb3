import type { IssueDraft } from './issues';
import type { DataPath } from './paths';
import { isRecord } from './rules';
import { BUILT_IN_ROLES } from './schemas';
import type { StepDraft } from './steps';
import { didYouMean, nearest } from './suggest';
import type { Verb } from './verbs';

/** What the rest of the file declares, as far as it is valid (undefined = unknown: skip checks). */
export type Declarations = {
  principals?: string[];
  subscriptions?: string[];
  clock?: 'real' | 'virtual';
};

/** Argument keys that name something declared in the file or made by an earlier step. */
const NAME_REFS = {
  principal: 'principal',
  subscription: 'subscription',
  workspace: 'workspace',
  compute: 'compute',
  vm: 'vm',
  datastore: 'datastore',
} as const;

/** Argument keys that name an earlier step by its `id`, with the verb that step must have. */
const STEP_REFS: Record<string, Verb> = {
  run: 'submitRun',
  snapshot: 'snapshot',
  image: 'createImage',
  service: 'deployWebservice',
  models: 'registerModel',
};

/** Values that are user data, never references (`callWebservice.data` is any JSON). */
const OPAQUE_KEYS = new Set(['data', 'env', 'tags', 'args', 'dependencies', 'environment']);

/**
 * Codes a step may expect precisely because a name does not exist; such a step may name
 * something undeclared (to show the rejection). Step ids are never exempt: they are the
 * scenario's own bookkeeping, not platform names.
 */
const NOT_FOUND_CODES = new Set(['ResourceNotFound', 'AADSTS50034']);

type Ref = { path: DataPath; name: string } & (
  | { kind: keyof typeof NAME_REFS; workspace?: string }
  | { kind: 'step'; verb: Verb }
);

type IdEntry = { verb: Verb | undefined; index: number; line: number; fails: boolean };

/** Verbs whose `name` a later step may use instead of the step's id (as the SDKs name models, images and services). */
export const NAMED_VERBS: ReadonlySet<string> = new Set<Verb>(['registerModel', 'createImage', 'deployWebservice']);

/** verb -> name -> the lines of the earlier steps (meant to succeed) that gave that name. */
type Names = Map<Verb, Map<string, Array<{ index: number; line: number }>>>;

/**
 * Cross-checks between steps and declarations: principals and subscriptions are declared;
 * workspaces, computes and VMs were made by an earlier step; step-id references name an earlier
 * step of the right verb; ids are unique; `advanceClock` has a virtual clock to advance.
 */
export function checkReferences(steps: readonly StepDraft[], declared: Declarations, rawSubscriptions: unknown): IssueDraft[] {
  const issues: IssueDraft[] = [...ownerIssues(rawSubscriptions, declared)];
  const made = { workspace: new Set<string>(), vm: new Set<string>(), role: new Set<string>() };
  const computes = new Map<string, Set<string>>();
  /** S4.2: datastores attached so far, by workspace. */
  const datastores = new Map<string, Set<string>>();
  const ids = new Map<string, IdEntry>();
  const names: Names = new Map();
  const laterIds = new Map<string, number>();
  for (const step of steps) if (step.id !== undefined && !laterIds.has(step.id)) laterIds.set(step.id, step.position.line);

  for (const step of steps) {
    const exempt = step.expect?.kind === 'error' && NOT_FOUND_CODES.has(step.expect.code);
    const fails = step.expect?.kind === 'error';

    if (step.as !== undefined) {
      issues.push(...declaredIssue(step.as, [...step.path, 'as'], 'principal', declared.principals, 'tenant.principals'));
    }
    if (step.verb === 'advanceClock' && declared.clock !== undefined && declared.clock !== 'virtual') {
      issues.push({
        path: [...step.path, 'advanceClock'],
        target: 'key',
        key: 'advanceClock',
        message: `advanceClock needs a virtual clock (options.clock: virtual); this scenario's clock is ${declared.clock}`,
      });
    }

    const args = argsForReferences(step);
    for (const ref of step.verb === undefined ? [] : collectRefs(args, [...step.path, step.verb])) {
      switch (ref.kind) {
        case 'principal':
          if (!exempt) issues.push(...declaredIssue(ref.name, ref.path, 'principal', declared.principals, 'tenant.principals'));
          break;
        case 'subscription':
          if (!exempt) issues.push(...declaredIssue(ref.name, ref.path, 'subscription', declared.subscriptions, 'subscriptions'));
          break;
        case 'workspace':
          if (!exempt && !made.workspace.has(ref.name)) {
            issues.push(notMadeIssue(ref, `workspace '${ref.name}' is not created by an earlier createWorkspace step`, made.workspace));
          }
          break;
        case 'vm':
          if (!exempt && !made.vm.has(ref.name)) {
            issues.push(notMadeIssue(ref, `vm '${ref.name}' is not created by an earlier createVm step`, made.vm));
          }
          break;
        case 'compute': {
          const known = computes.get(ref.workspace ?? '') ?? new Set<string>();
          if (!exempt && !known.has(ref.name)) {
            const where = ref.workspace === undefined ? '' : ` in workspace '${ref.workspace}'`;
            issues.push(notMadeIssue(ref, `compute '${ref.name}' is not created${where} by an earlier createCompute or attachCompute step`, known));
          }
          break;
        }
        case 'datastore': {
          const known = datastores.get(ref.workspace ?? '') ?? new Set<string>();
          if (!exempt && !known.has(ref.name)) {
            const where = ref.workspace === undefined ? '' : ` to workspace '${ref.workspace}'`;
            issues.push(notMadeIssue(ref, `datastore '${ref.name}' is not attached${where} by an earlier attachDatastore step`, known));
          }
          break;
        }
        case 'step':
          issues.push(...stepRefIssues(ref, ids, laterIds, names));
          break;
      }
    }
    if (step.verb === 'assignRole' && isRecord(args) && typeof args['role'] === 'string') {
      issues.push(...roleIssues(args['role'], [...step.path, 'assignRole', 'role'], made.role));
    }

    // What this step makes exists for later steps only if the step is meant to succeed.
    if (!fails && isRecord(args)) {
      const name = typeof args['name'] === 'string' ? args['name'] : undefined;
      if (name !== undefined && step.verb === 'createWorkspace') made.workspace.add(name);
      if (name !== undefined && step.verb === 'createVm') made.vm.add(name);
      if (name !== undefined && step.verb === 'defineRole') made.role.add(name);
      if (name !== undefined && step.verb !== undefined && NAMED_VERBS.has(step.verb)) {
        const byName = names.get(step.verb) ?? new Map<string, Array<{ index: number; line: number }>>();
        names.set(step.verb, byName.set(name, [...(byName.get(name) ?? []), { index: step.index, line: step.position.line }]));
      }
      if (name !== undefined && (step.verb === 'createCompute' || step.verb === 'attachCompute') && typeof args['workspace'] === 'string') {
        const inWorkspace = computes.get(args['workspace']) ?? new Set<string>();
        computes.set(args['workspace'], inWorkspace.add(name));
      }
      if (name !== undefined && step.verb === 'attachDatastore' && typeof args['workspace'] === 'string') {
        const inWorkspace = datastores.get(args['workspace']) ?? new Set<string>();
        datastores.set(args['workspace'], inWorkspace.add(name));
      }
    }
    if (step.id !== undefined) {
      const first = ids.get(step.id);
      if (first !== undefined) {
        issues.push({
          path: [...step.path, 'id'],
          target: 'value',
          key: 'id',
          message: `duplicate step id '${step.id}' (first used by the step at line ${first.line}); ids must be unique`,
        });
      } else {
        ids.set(step.id, { verb: step.verb, index: step.index, line: step.position.line, fails });
      }
    }
  }
  return issues;
}

/** Validated arguments, or the raw ones when invalid (so a typo elsewhere hides no reference error). */
function argsForReferences(step: StepDraft): unknown {
  if (step.args !== undefined) return step.args;
  if (step.verb === 'signIn' && typeof step.rawArgs === 'string') return { principal: step.rawArgs };
  return step.rawArgs;
}

function collectRefs(value: unknown, path: DataPath, inherited?: string): Ref[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => collectRefs(item, [...path, i], inherited));
  if (!isRecord(value)) return [];
  // A nested name (a run input's datastore) is in the workspace of the step that holds it.
  const workspace = typeof value['workspace'] === 'string' ? value['workspace'] : inherited;
  return Object.entries(value).flatMap(([key, v]): Ref[] => {
    const here = [...path, key];
    if (Object.hasOwn(NAME_REFS, key) && typeof v === 'string') {
      return [{ kind: NAME_REFS[key as keyof typeof NAME_REFS], name: v, path: here, ...(workspace ? { workspace } : {}) }];
    }
    const verb = STEP_REFS[key];
    if (verb !== undefined && typeof v === 'string') return [{ kind: 'step', verb, name: v, path: here }];
    if (verb !== undefined && Array.isArray(v)) {
      return v.flatMap((item, i) => (typeof item === 'string' ? [{ kind: 'step' as const, verb, name: item, path: [...here, i] }] : []));
    }
    // A run's inputs are keyed by names the user chooses (`data` too): each one's value is checked.
    if (key === 'inputs' && isRecord(v)) return Object.entries(v).flatMap(([input, spec]) => collectRefs(spec, [...here, input], workspace));
    return OPAQUE_KEYS.has(key) ? [] : collectRefs(v, here, workspace);
  });
}

function declaredIssue(name: string, path: DataPath, noun: string, declared: string[] | undefined, where: string): IssueDraft[] {
  if (declared === undefined || declared.includes(name)) return [];
  const suggestion = nearest(name, declared);
  return [
    {
      path,
      target: 'value',
      message: `'${name}' is not a declared ${noun} (${where}: ${declared.join(', ') || 'none'})${didYouMean(suggestion)}`,
      allowed: declared,
      ...(suggestion ? { suggestion } : {}),
    },
  ];
}

function notMadeIssue(ref: Ref, what: string, known: Set<string>): IssueDraft {
  const names = [...known];
  const suggestion = nearest(ref.name, names);
  return {
    path: ref.path,
    target: 'value',
    message: `${what} (so far: ${names.join(', ') || 'none'})${didYouMean(suggestion)}`,
    allowed: names,
    ...(suggestion ? { suggestion } : {}),
  };
}

/**
 * A reference to what an earlier step made: its step id, or — for models, images and services —
 * the `name` that step gave it. One that could mean two steps (an id of one and the name of
 * another, or a name two steps gave) is refused, as is one that names nothing.
 */
function stepRefIssues(ref: Ref & { kind: 'step' }, ids: Map<string, IdEntry>, laterIds: Map<string, number>, names: Names): IssueDraft[] {
  const entry = ids.get(ref.name);
  const issue = (message: string, extra: Partial<IssueDraft> = {}): IssueDraft[] => [{ path: ref.path, target: 'value', message, ...extra }];
  const named = NAMED_VERBS.has(ref.verb) ? (names.get(ref.verb)?.get(ref.name) ?? []) : [];
  const isId = entry !== undefined && entry.verb === ref.verb && !entry.fails;
  if (isId && named.some((n) => n.index !== entry.index)) {
    const other = named.find((n) => n.index !== entry.index)!;
    return issue(`'${ref.name}' is ambiguous: the id of the ${ref.verb} step at line ${entry.line} and the name given by the ${ref.verb} step at line ${other.line}; rename one`);
  }
  if (!isId && named.length > 1) {
    return issue(`'${ref.name}' is ambiguous: the name given by the ${ref.verb} steps at lines ${named.map((n) => n.line).join(', ')}; give the one you mean an id and refer to it by that`);
  }
  if (!isId && named.length === 1) return [];
  if (entry === undefined) {
    const later = laterIds.get(ref.name);
    if (later !== undefined) return issue(`'${ref.name}' is the id of a later step (line ${later}); a step can only refer to earlier steps`);
    const candidates = [...ids].filter(([, e]) => e.verb === ref.verb).map(([id]) => id);
    const givenNames = NAMED_VERBS.has(ref.verb) ? [...(names.get(ref.verb)?.keys() ?? [])] : [];
    const suggestion = nearest(ref.name, [...candidates, ...givenNames]);
    const also = NAMED_VERBS.has(ref.verb) ? `, names given so far: ${givenNames.join(', ') || 'none'}` : '';
    return issue(
      `'${ref.name}' ${NAMED_VERBS.has(ref.verb) ? `is neither the id of an earlier ${ref.verb} step nor a name one gave` : `is not the id of an earlier ${ref.verb} step`} (${ref.verb} ids so far: ${candidates.join(', ') || 'none'}${also})${didYouMean(suggestion)}`,
      { allowed: [...candidates, ...givenNames], ...(suggestion ? { suggestion } : {}) },
    );
  }
  if (entry.verb !== ref.verb) {
    return issue(`'${ref.name}' is the id of a ${entry.verb ?? 'step without a verb'} step (line ${entry.line}), not of a ${ref.verb} step`);
  }
  if (entry.fails) {
    return issue(`'${ref.name}' is the id of a step expected to fail (line ${entry.line}), so it made nothing to refer to`);
  }
  return [];
}

// Custom role names are free, but one that is almost a built-in (or an earlier defined) role
// is a typo: assigning "Contibutor" would fail at run time for a reason the author did not mean.
function roleIssues(role: string, path: DataPath, customRoles: Set<string>): IssueDraft[] {
  const known = [...BUILT_IN_ROLES, ...customRoles];
  if (known.includes(role)) return [];
  const suggestion = nearest(role, known, 2);
  if (suggestion === undefined) return [];
  return [
    {
      path,
      target: 'value',
      key: 'role',
      message: `role '${role}' is neither built in (${BUILT_IN_ROLES.join(', ')}) nor defined by an earlier defineRole step${didYouMean(suggestion)}`,
      suggestion,
    },
  ];
}

function ownerIssues(rawSubscriptions: unknown, declared: Declarations): IssueDraft[] {
  if (!isRecord(rawSubscriptions)) return [];
  return Object.entries(rawSubscriptions).flatMap(([sub, value]) => {
    const owners = isRecord(value) && Array.isArray(value['owners']) ? value['owners'] : [];
    return owners.flatMap((owner, i) =>
      typeof owner === 'string'
        ? declaredIssue(owner, ['subscriptions', sub, 'owners', i], 'principal', declared.principals, 'tenant.principals')
        : [],
    );
  });
}
