import { errors } from '../errors/catalog';
import { WORKSPACE_PROVIDER, scopeKind } from './scope';

/** A role definition as ARM has it: Actions minus NotActions, assignable at some scopes. */
export type RoleDefinition = {
  name: string;
  builtIn: boolean;
  actions: readonly string[];
  notActions: readonly string[];
  /** Scopes the role may be assigned at (and below); `['/']` for built-ins. */
  assignableScopes: readonly string[];
  /** A custom role's GUID as its ARM client named it (docs/azure.md); absent: derived from the name. */
  roleDefinitionId?: string;
};

/**
 * Built-in roles (S2.1, S2.2). Shaped like Azure's, with two simulator-specific entries,
 * each there to make the S2.2 table hold exactly:
 * - Contributor excludes `workspaces/upgrade/action`: S2.2 lets only Owners upgrade to Enterprise.
 * - Reader gets `services/score/action`: S2.2 lets Readers call web services.
 */
export const BUILT_IN_ROLES: Readonly<Record<'Owner' | 'Contributor' | 'Reader', RoleDefinition>> = {
  Owner: { name: 'Owner', builtIn: true, actions: ['*'], notActions: [], assignableScopes: ['/'] },
  Contributor: {
    name: 'Contributor',
    builtIn: true,
    actions: ['*'],
    notActions: [
      'Microsoft.Authorization/*/Delete',
      'Microsoft.Authorization/*/Write',
      'Microsoft.Authorization/elevateAccess/Action',
      `${WORKSPACE_PROVIDER}/upgrade/action`,
    ],
    assignableScopes: ['/'],
  },
  Reader: {
    name: 'Reader',
    builtIn: true,
    actions: ['*/read', `${WORKSPACE_PROVIDER}/services/score/action`],
    notActions: [],
    assignableScopes: ['/'],
  },
};

export const isBuiltInRoleName = (name: string): name is keyof typeof BUILT_IN_ROLES =>
  Object.prototype.hasOwnProperty.call(BUILT_IN_ROLES, name);

const patternCache = new Map<string, RegExp>();

/** ARM action patterns: `*` matches any run of characters (including `/`); case-insensitive. */
export const actionMatches = (pattern: string, action: string): boolean => {
  let re = patternCache.get(pattern);
  if (!re) {
    const body = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}$`, 'i');
    patternCache.set(pattern, re);
  }
  return re.test(action);
};

/**
 * S2.3: custom roles may grant operations on the workspace and on Machine Learning Compute
 * only, and be assignable at workspace, resource-group or subscription scope. Returns the
 * validated definition or throws BadRequest naming the offending entry.
 */
export const validateCustomRole = (input: {
  name: string;
  actions: readonly string[];
  notActions?: readonly string[];
  assignableScopes: readonly string[];
}): RoleDefinition => {
  if (isBuiltInRoleName(input.name)) {
    throw errors.conflict(`A built-in role is named '${input.name}'; choose another name for the custom role.`, { role: input.name });
  }
  if (input.actions.length === 0) {
    throw errors.badRequest(`Custom role '${input.name}' grants no actions; give at least one.`, { role: input.name });
  }
  const prefix = `${WORKSPACE_PROVIDER.toLowerCase()}`;
  for (const list of [input.actions, input.notActions ?? []]) {
    for (const action of list) {
      const lower = action.toLowerCase();
      if (!(lower === prefix || lower.startsWith(`${prefix}/`))) {
        throw errors.badRequest(
          `Custom role '${input.name}': action '${action}' is not allowed. Custom roles may only grant operations on ` +
            `workspaces and Machine Learning Compute, i.e. actions under '${WORKSPACE_PROVIDER}/' (S2.3).`,
          { role: input.name, action },
        );
      }
    }
  }
  if (input.assignableScopes.length === 0) {
    throw errors.badRequest(`Custom role '${input.name}' has no assignable scopes.`, { role: input.name });
  }
  for (const scope of input.assignableScopes) {
    const kind = scopeKind(scope);
    if (kind !== 'subscription' && kind !== 'resourceGroup' && kind !== 'workspace') {
      throw errors.badRequest(
        `Custom role '${input.name}': assignable scope '${scope}' is not a subscription, resource group or workspace scope (S2.3).`,
        { role: input.name, scope },
      );
    }
  }
  return {
    name: input.name,
    builtIn: false,
    actions: [...input.actions],
    notActions: [...(input.notActions ?? [])],
    assignableScopes: [...input.assignableScopes],
  };
};
