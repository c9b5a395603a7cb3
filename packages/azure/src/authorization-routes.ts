import { BUILT_IN_ROLES, type RoleDefinition } from '@amlsim/core';
import type { Platform, ScopeRef } from '@amlsim/platform';
import { ArmHttpError, badRequest, notFound } from './http-errors';
import { lastSegment, parseScope, roleDefinitionId, roleGuid, scopeString, type ParsedScope } from './resource-ids';
import type { ArmRoute } from './router';

const AUTH = 'Microsoft.Authorization' as const;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** A scope of the path as the platform names it; others are refused with what is modeled. */
const scopeOf = (raw: string): ParsedScope => {
  const parsed = parseScope(raw);
  if (!parsed) throw badRequest('InvalidScope', `The scope '${raw}' is not modeled; role assignments and definitions live at a subscription, a resource group or a workspace.`);
  return parsed;
};

const scopeRef = (s: ParsedScope): ScopeRef =>
  'workspace' in s ? { workspace: s.workspace } : 'resourceGroup' in s ? { resourceGroup: s.resourceGroup, subscription: s.subscription } : { subscription: s.subscription };

const definitionResource = (subscription: string, role: RoleDefinition) => ({
  id: roleDefinitionId(subscription, role),
  name: roleGuid(role),
  type: 'Microsoft.Authorization/roleDefinitions',
  properties: {
    roleName: role.name,
    type: role.builtIn ? 'BuiltInRole' : 'CustomRole',
    description: role.builtIn ? `The built-in ${role.name} role.` : `Custom role ${role.name}.`,
    assignableScopes: [...role.assignableScopes],
    permissions: [{ actions: [...role.actions], notActions: [...role.notActions], dataActions: [], notDataActions: [] }],
  },
});

/** The role a roleDefinitionId names (by its GUID), built-in or custom. */
const roleByDefinitionId = (platform: Platform, id: string): RoleDefinition => {
  const guid = lastSegment(id).toLowerCase();
  const all = [...Object.values(BUILT_IN_ROLES), ...Object.values(platform.world.access.customRoles)];
  const role = all.find((r) => roleGuid(r).toLowerCase() === guid);
  if (!role) throw new ArmHttpError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${guid}' does not exist.`);
  return role;
};

const assignmentResource = (platform: Platform, a: { assignmentId: string; principalId: string; role: string; scope: string }) => {
  const sub = a.scope.split('/')[2]!;
  const role = BUILT_IN_ROLES[a.role as keyof typeof BUILT_IN_ROLES] ?? platform.world.access.customRoles[a.role];
  return {
    id: `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.assignmentId}`,
    name: a.assignmentId,
    type: 'Microsoft.Authorization/roleAssignments',
    properties: {
      scope: a.scope,
      principalId: a.principalId,
      principalType: platform.world.directory.byId[a.principalId]?.kind === 'user' ? 'User' : 'ServicePrincipal',
      roleDefinitionId: role ? roleDefinitionId(sub, role) : a.role,
    },
  };
};

/** `$filter=roleName eq 'Reader'` (what clients use to find a role's id), or none. */
const roleNameFilter = (filter: string | undefined): string | undefined => {
  if (!filter) return undefined;
  const m = /^roleName\s+eq\s+'([^']*)'$/i.exec(filter.trim());
  if (!m) throw badRequest('InvalidFilter', `$filter '${filter}' is not modeled; roleName eq '<name>' is.`);
  return m[1];
};

/** Microsoft.Authorization: role definitions (built-in and custom, S2.3) and role assignments (S2.1, S2.2). */
export function authorizationRoutes(): ArmRoute[] {
  const route = (method: ArmRoute['method'], path: string, type: string, handle: ArmRoute['handle']): ArmRoute => ({ method, path, provider: AUTH, type, handle });
  return [
    route('GET', '{scope*}/providers/Microsoft.Authorization/roleDefinitions', 'roleDefinitions', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      const name = roleNameFilter(req.query['$filter']);
      const roles = (await platform.arm.listRoleDefinitions(req.token, { scope: scopeString(scope) })).filter((r) => name === undefined || r.name.toLowerCase() === name.toLowerCase());
      return { status: 200, body: { value: roles.map((r) => definitionResource(scope.subscription, r)) } };
    }),
    route('GET', '{scope*}/providers/Microsoft.Authorization/roleDefinitions/{id}', 'roleDefinitions', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      await platform.arm.listRoleDefinitions(req.token, { scope: scopeString(scope) });
      return { status: 200, body: definitionResource(scope.subscription, roleByDefinitionId(platform, req.params['id']!)) };
    }),
    route('PUT', '{scope*}/providers/Microsoft.Authorization/roleDefinitions/{id}', 'roleDefinitions', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      if (!GUID.test(req.params['id']!)) throw badRequest('InvalidRoleDefinitionId', `The role definition ID '${req.params['id']}' is not valid. The role definition ID must be a GUID.`);
      const props = obj(req.body['properties']);
      const name = typeof props['roleName'] === 'string' ? props['roleName'] : undefined;
      if (!name) throw badRequest('InvalidRoleDefinition', 'properties.roleName is required.');
      const permissions = Array.isArray(props['permissions']) ? props['permissions'].map(obj) : [];
      if (permissions.length !== 1) throw badRequest('InvalidRoleDefinition', 'properties.permissions must hold exactly one { actions, notActions } entry (data actions are not modeled).');
      const strings = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
      const assignableScopes = strings(props['assignableScopes']);
      await platform.arm.defineRole(req.token, {
        name,
        actions: strings(permissions[0]!['actions']),
        notActions: strings(permissions[0]!['notActions']),
        assignableScopes: assignableScopes.length ? assignableScopes : [scopeString(scope)],
        roleDefinitionId: req.params['id']!,
      });
      return { status: 201, body: definitionResource(scope.subscription, platform.world.access.customRoles[name]!) };
    }),
    route('GET', '{scope*}/providers/Microsoft.Authorization/roleAssignments', 'roleAssignments', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      const list = await platform.arm.listRoleAssignments(req.token, { scope: scopeString(scope) });
      return { status: 200, body: { value: list.map((a) => assignmentResource(platform, a)) } };
    }),
    route('GET', '{scope*}/providers/Microsoft.Authorization/roleAssignments/{name}', 'roleAssignments', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      const found = (await platform.arm.listRoleAssignments(req.token, { scope: scopeString(scope) })).find((a) => a.assignmentId === req.params['name']);
      if (!found) throw new ArmHttpError(404, 'RoleAssignmentNotFound', `The role assignment '${req.params['name']}' is not found.`);
      return { status: 200, body: assignmentResource(platform, found) };
    }),
    route('DELETE', '{scope*}/providers/Microsoft.Authorization/roleAssignments/{name}', 'roleAssignments', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      const before = (await platform.arm.listRoleAssignments(req.token, { scope: scopeString(scope) })).find((a) => a.assignmentId === req.params['name']);
      const { removed } = await platform.arm.removeRoleAssignment(req.token, { scope: before?.scope ?? scopeString(scope), assignmentId: req.params['name']! });
      // ARM answers 200 with the assignment removed, 204 when there was none.
      return removed && before ? { status: 200, body: assignmentResource(platform, before) } : { status: 204 };
    }),
    route('PUT', '{scope*}/providers/Microsoft.Authorization/roleAssignments/{name}', 'roleAssignments', async (req, platform) => {
      const scope = scopeOf(req.params['scope']!);
      const props = obj(req.body['properties']);
      const principalId = typeof props['principalId'] === 'string' ? props['principalId'] : '';
      const principal = platform.world.directory.byId[principalId];
      if (!principal) throw badRequest('PrincipalNotFound', `Principal ${principalId || '(none)'} does not exist in the directory ${platform.directory.tenantId}.`);
      const role = roleByDefinitionId(platform, typeof props['roleDefinitionId'] === 'string' ? props['roleDefinitionId'] : '');
      const name = req.params['name']!;
      if (!GUID.test(name)) throw badRequest('InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
      await platform.arm.assignRole(req.token, { principal: principal.principal, role: role.name, scope: scopeRef(scope), assignmentId: name });
      const made = (await platform.arm.listRoleAssignments(req.token, { scope: scopeString(scope) }).catch(() => [])).find((a) => a.assignmentId === name);
      if (!made) throw notFound(`The role assignment '${name}' was made but cannot be read back by its caller.`);
      return { status: 201, body: assignmentResource(platform, made) };
    }),
  ];
}
