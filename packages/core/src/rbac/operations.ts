/**
 * The operations of S2.2 and the ARM action each one needs. The role-matrix test walks this
 * table × {Owner, Contributor, Reader} and checks it against the built-in role definitions,
 * so the S2.2 table holds exactly.
 */
export type Role = 'Owner' | 'Contributor' | 'Reader';

export type OperationRow = {
  /** The S2.2 row, word for word. */
  operation: string;
  /** The ARM action authorized for it. */
  action: string;
  /** Which level of scope the action is checked at. */
  scopeLevel: 'resourceGroup' | 'workspace';
  /** Roles the S2.2 table allows. */
  allowed: readonly Role[];
};

const ML = 'Microsoft.MachineLearningServices/workspaces';

export const actions = {
  createWorkspace: `${ML}/write`,
  readWorkspace: `${ML}/read`,
  deleteWorkspace: `${ML}/delete`,
  deleteCompute: `${ML}/computes/delete`,
  deleteRoleAssignment: 'Microsoft.Authorization/roleAssignments/delete',
  listWorkspaceKeys: `${ML}/listKeys/action`,
  readCompute: `${ML}/computes/read`,
  readRoleAssignments: 'Microsoft.Authorization/roleAssignments/read',
  readRoleDefinitions: 'Microsoft.Authorization/roleDefinitions/read',
  listStorageKeys: 'Microsoft.Storage/storageAccounts/listkeys/action',
  shareWorkspace: 'Microsoft.Authorization/roleAssignments/write',
  defineRole: 'Microsoft.Authorization/roleDefinitions/write',
  createResourceGroup: 'Microsoft.Resources/subscriptions/resourceGroups/write',
  upgradeWorkspace: `${ML}/upgrade/action`,
  createCompute: `${ML}/computes/write`,
  attachCompute: `${ML}/computes/attach/action`,
  attachDatastore: `${ML}/datastores/write`,
  runExperiment: `${ML}/experiments/runs/submit/action`,
  viewRuns: `${ML}/experiments/runs/read`,
  viewMetrics: `${ML}/metrics/read`,
  registerModel: `${ML}/models/write`,
  createImage: `${ML}/images/write`,
  deployService: `${ML}/services/write`,
  viewModels: `${ML}/models/read`,
  viewImages: `${ML}/images/read`,
  callService: `${ML}/services/score/action`,
  listServiceKeys: `${ML}/services/listkeys/action`,
  serviceToken: `${ML}/services/token/action`,
  readAppInsights: 'Microsoft.Insights/components/read',
  revokeIdentityAccess: 'Microsoft.Authorization/roleAssignments/delete',
  resyncKeys: `${ML}/resynckeys/action`,
  regenerateStorageKey: 'Microsoft.Storage/storageAccounts/regeneratekey/action',
  readActivityLog: 'Microsoft.Insights/eventtypes/values/read',
  readWorkspaceMetrics: 'Microsoft.Insights/metrics/read',
} as const;

const OCR: readonly Role[] = ['Owner', 'Contributor', 'Reader'];
const OC: readonly Role[] = ['Owner', 'Contributor'];
const O: readonly Role[] = ['Owner'];

/** S2.2, one entry per (row, action); rows naming two things ("runs/metrics") get one entry per action. */
export const S2_2_OPERATIONS: readonly OperationRow[] = [
  { operation: 'create workspace', action: actions.createWorkspace, scopeLevel: 'resourceGroup', allowed: OC },
  { operation: 'share workspace', action: actions.shareWorkspace, scopeLevel: 'workspace', allowed: O },
  { operation: 'upgrade workspace to Enterprise edition', action: actions.upgradeWorkspace, scopeLevel: 'workspace', allowed: O },
  { operation: 'create compute target', action: actions.createCompute, scopeLevel: 'workspace', allowed: OC },
  { operation: 'attach compute target', action: actions.attachCompute, scopeLevel: 'workspace', allowed: OC },
  { operation: 'attach datastores', action: actions.attachDatastore, scopeLevel: 'workspace', allowed: OC },
  { operation: 'run experiment', action: actions.runExperiment, scopeLevel: 'workspace', allowed: OC },
  { operation: 'view runs/metrics', action: actions.viewRuns, scopeLevel: 'workspace', allowed: OCR },
  { operation: 'view runs/metrics', action: actions.viewMetrics, scopeLevel: 'workspace', allowed: OCR },
  { operation: 'register model', action: actions.registerModel, scopeLevel: 'workspace', allowed: OC },
  { operation: 'create image', action: actions.createImage, scopeLevel: 'workspace', allowed: OC },
  { operation: 'deploy web service', action: actions.deployService, scopeLevel: 'workspace', allowed: OC },
  { operation: 'view models/images', action: actions.viewModels, scopeLevel: 'workspace', allowed: OCR },
  { operation: 'view models/images', action: actions.viewImages, scopeLevel: 'workspace', allowed: OCR },
  { operation: 'call web service', action: actions.callService, scopeLevel: 'workspace', allowed: OCR },
];
