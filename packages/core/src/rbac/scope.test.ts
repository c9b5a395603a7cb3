import { describe, expect, it } from 'vitest';
import { computeScope, isWithinScope, resourceGroupScope, scopeKind, subscriptionScope, workspaceScope } from './scope';

/** ARM scopes (S2.1, S2.3): what an id names, and what lies below what. */
const ws = workspaceScope('sub-1', 'rg1', 'ws1');

describe('ARM scopes', () => {
  it('builds ids for every level', () => {
    expect(subscriptionScope('sub-1')).toBe('/subscriptions/sub-1');
    expect(resourceGroupScope('sub-1', 'rg1')).toBe('/subscriptions/sub-1/resourceGroups/rg1');
    expect(ws).toBe('/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1');
    expect(computeScope(ws, 'cpu')).toBe(`${ws}/computes/cpu`);
  });

  it.each([
    ['/subscriptions/sub-1', 'subscription'],
    ['/subscriptions/sub-1/', 'subscription'],
    ['/SUBSCRIPTIONS/sub-1/RESOURCEGROUPS/rg1', 'resourceGroup'],
    ['/subscriptions/sub-1/resourceGroups/rg1//', 'resourceGroup'],
    [ws, 'workspace'],
    [ws.toLowerCase(), 'workspace'],
    [`${ws}/computes/cpu`, 'compute'],
    [`${ws}/COMPUTES/cpu/`, 'compute'],
  ])('%s is a %s scope', (scope, kind) => {
    expect(scopeKind(scope)).toBe(kind);
  });

  it.each([
    ['no leading slash', 'subscriptions/sub-1'],
    ['not a subscription', '/tenants/t1'],
    ['no subscription id', '/subscriptions/'],
    ['not a resource group', '/subscriptions/sub-1/locks/l1'],
    ['no resource group name', '/subscriptions/sub-1/resourceGroups/'],
    ['no providers segment', '/subscriptions/sub-1/resourceGroups/rg1/things/Microsoft.MachineLearningServices/workspaces/ws1'],
    ['another provider', '/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st1'],
    ['no workspace name', '/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces'],
    ['something other than computes under a workspace', `${ws}/datastores/d1`],
    ['no compute name', `${ws}/computes`],
    ['a level below a compute', `${ws}/computes/cpu/nodes/n1`],
    ['half a level below the resource group', '/subscriptions/sub-1/resourceGroups/rg1/providers'],
  ])('an id with %s names no known scope', (_, scope) => {
    expect(scopeKind(scope)).toBeUndefined();
  });

  it('a scope lies within itself and its ancestors, case-insensitively and ignoring a trailing slash', () => {
    expect(isWithinScope(ws, ws)).toBe(true);
    expect(isWithinScope(`${ws}/`, ws)).toBe(true);
    expect(isWithinScope(ws, `${resourceGroupScope('sub-1', 'rg1')}/`)).toBe(true);
    expect(isWithinScope(ws.toUpperCase(), subscriptionScope('sub-1'))).toBe(true);
    expect(isWithinScope(computeScope(ws, 'cpu'), ws)).toBe(true);
  });

  it('a scope does not lie within a sibling, a child, or a name it merely starts with', () => {
    expect(isWithinScope(ws, workspaceScope('sub-1', 'rg1', 'ws2'))).toBe(false);
    expect(isWithinScope(workspaceScope('sub-1', 'rg1', 'ws10'), workspaceScope('sub-1', 'rg1', 'ws1'))).toBe(false);
    expect(isWithinScope(resourceGroupScope('sub-1', 'rg1'), ws)).toBe(false);
    expect(isWithinScope(resourceGroupScope('sub-1', 'rg10'), resourceGroupScope('sub-1', 'rg1'))).toBe(false);
    expect(isWithinScope(subscriptionScope('sub-12'), subscriptionScope('sub-1'))).toBe(false);
  });
});
