/**
 * The requirements amlsim implements, by id (S1.1 … S8.5), each with a short title and its text
 * restated in English. Event docs, scenarios and the dashboard cite these ids; this file is
 * where an id's meaning is written down. docs/requirements.md is generated from it
 * (scripts/gen-requirements-doc.ts) and test/requirements.test.ts checks that every id the
 * repository cites is listed here.
 */
export type Requirement = { id: string; section: string; title: string; text: string };

/** A group of requirements: `S1` … `S8`, the prefix of its requirements' ids. */
export type Section = { id: string; title: string };

/** The sections, in order. A requirement's `section` is the id of one of these. */
export const SECTIONS: Readonly<Record<string, Section>> = {
  S1: { id: 'S1', title: 'Authentication' },
  S2: { id: 'S2', title: 'Authorization' },
  S3: { id: 'S3', title: 'Network security' },
  S4: { id: 'S4', title: 'Encryption at rest' },
  S5: { id: 'S5', title: 'Encryption in transit' },
  S6: { id: 'S6', title: 'Key Vault' },
  S7: { id: 'S7', title: 'Monitoring' },
  S8: { id: 'S8', title: 'Data flows' },
};

/** Written as [id, title, text]; the section is the id's prefix. */
const ENTRIES: ReadonlyArray<readonly [id: string, title: string, text: string]> = [
  // ---- S1 Authentication ----------------------------------------------------------------------
  [
    'S1.1',
    'Sign-in and ARM token',
    'A client (CLI, SDK or portal) signs in to Azure AD as a user or a service principal and receives an Azure Resource Manager (ARM) token. Where the directory requires multi-factor authentication, a sign-in without the second factor is refused.',
  ],
  ['S1.2', 'Token passed to ARM and AML', 'The client presents that token on its calls to ARM and to Azure Machine Learning (AML).'],
  [
    'S1.3',
    'Workspace-scoped run token',
    "AML issues the user's compute target a short-lived AML token scoped to one workspace. The compute target uses it to call back into AML, e.g. to write the run's metrics back (S8.4).",
  ],
  [
    'S1.4',
    'Web service authentication',
    'A web service authenticates callers with either a key or a token, never both. On ACI key auth is off by default and token auth is not available; on AKS key auth is on and token auth off by default (parameters `auth_enabled`, `token_auth_enabled`).',
  ],
  [
    'S1.5',
    'Service keys',
    'Enabling key auth creates a primary and a secondary key automatically. `get_keys` returns both; `regen_key` regenerates one of them, and its old value stops working immediately.',
  ],
  [
    'S1.6',
    'Service tokens',
    "`get_token` returns a JWT and its `refresh_by` time, after which a new token must be requested. Getting a token calls the workspace's region: while that region is unavailable no token is issued, even for a cluster in another region, and the distance between the two regions adds to how long it takes.",
  ],

  // ---- S2 Authorization -----------------------------------------------------------------------
  [
    'S2.1',
    'Shared workspaces and roles',
    'There are many workspaces, and each can be shared by many users, who hold the role Owner, Contributor or Reader on it.',
  ],
  [
    'S2.2',
    'Operations per role',
    'Only an Owner may share a workspace or upgrade it to Enterprise edition. Owners and Contributors may create workspaces, create or attach compute targets, attach datastores, run experiments, register models, create images and deploy web services. All three roles, Reader included, may view runs and metrics, view models and images, and call web services.',
  ],
  [
    'S2.3',
    'Custom roles',
    'Custom roles cover only operations on the workspace and on Machine Learning Compute, granting read, write or delete on either. They can be made available at workspace, resource-group or subscription scope.',
  ],
  [
    'S2.4',
    'Attached resources usable by Owners and Contributors',
    'Owners and Contributors can use every compute target and every datastore attached to the workspace.',
  ],
  [
    'S2.5',
    'Workspace managed identity',
    "Each workspace has a system-assigned managed identity named after it, granted Contributor on the workspace, its container registry, its resource group and the key vault's resource group (if different), Storage Blob Data Contributor on its storage account, and access to all keys, secrets and certificates of its key vault. If an administrator revokes these grants, whatever depends on them fails until the resync keys operation restores them.",
  ],
  [
    'S2.6',
    'Support application per region',
    'For each region of a subscription that holds workspaces, AML creates one more application (named `aml-…` or `Microsoft-AzureML-Support-App-…`) with Contributor on the subscription, so that two workspaces in two regions give two applications. They let AML manage compute resources.',
  ],

  // ---- S3 Network security --------------------------------------------------------------------
  [
    'S3.1',
    'Compute in a virtual network',
    'Compute targets for training and for deployment can be created inside a virtual network, e.g. training on a Data Science VM and deploying the model to AKS.',
  ],

  // ---- S4 Encryption at rest ------------------------------------------------------------------
  [
    'S4.1',
    'Workspace blob storage encrypted',
    "Snapshots, outputs and logs are kept in the workspace's blob storage account, encrypted at rest with platform-managed keys; customer-managed keys are an option.",
  ],
  [
    'S4.2',
    'Training data mounted',
    'Training data usually lives in blob storage as well, but AML does not manage it: it is mounted into compute targets as a remote file system.',
  ],
  ['S4.3', 'Storage key regeneration', 'The access keys of the storage account can be regenerated.'],
  [
    'S4.4',
    'Metrics in Cosmos DB',
    'Metrics and metadata are kept in a Cosmos DB instance in a platform-managed subscription, encrypted at rest with platform-managed keys.',
  ],
  [
    'S4.5',
    'Registry images encrypted',
    'Container registry images are encrypted at rest: encrypted before they are stored and decrypted when AML pulls them.',
  ],
  [
    'S4.6',
    'Ephemeral managed compute disks',
    "Each Machine Learning Compute node's OS disk is encrypted with platform-managed keys; user-side encryption of it is not supported. Clusters scale down when no runs are queued, deprovisioning the node's VM and deleting its OS disk. Each node also has a local temporary disk that is not encrypted and may hold training data.",
  ],

  // ---- S5 Encryption in transit ---------------------------------------------------------------
  [
    'S5.1',
    'TLS in transit',
    "TLS can secure the internal traffic between AML's services and external calls to the scoring endpoint. All storage access goes over a secure channel.",
  ],

  // ---- S6 Key Vault ---------------------------------------------------------------------------
  [
    'S6.1',
    'Workspace key vault contents',
    "The workspace's key vault holds the storage account's connection string, the container registry's passwords and the datastores' connection strings.",
  ],
  [
    'S6.2',
    'Platform key vault for SSH credentials',
    'SSH passwords and keys for compute targets such as VMs and HDInsight are kept in a separate key vault in the platform subscription. AML stores no password or key a user supplied: it generates, authorizes and stores its own SSH keys to reach those targets.',
  ],
  [
    'S6.3',
    'Managed identity reads the vault',
    "The workspace's managed identity can access every key, secret and certificate in the workspace's key vault.",
  ],

  // ---- S7 Monitoring --------------------------------------------------------------------------
  ['S7.1', 'Workspace metrics', 'Azure Monitor shows workspace metrics for runs, deployments and model registrations.'],
  [
    'S7.2',
    'Activity log gaps',
    "The activity log records each operation's name, initiator and time, but some actions are not logged there, e.g. starting a training run or registering a model. Some of these appear in the workspace's Activities pane, without saying who initiated them.",
  ],
  [
    'S7.3',
    'Scoring telemetry in Application Insights',
    "Details of each scoring request (HTTPMethod, UserAgent, ComputeType, RequestUrl, StatusCode, RequestId, Duration) go to the Application Insights instance created with the workspace in the user's subscription.",
  ],

  // ---- S8 Data flows --------------------------------------------------------------------------
  [
    'S8.1',
    'Create workspace',
    "The user signs in to Azure AD, gets an ARM token and asks ARM to create the workspace; ARM has the AML resource provider provision it, together with a key vault, a storage account (blob and file share), a container registry and Application Insights in the user's subscription. Other compute targets (AKS, VMs) can be attached afterwards.",
  ],
  [
    'S8.2',
    'Code snapshot',
    "An experiment is a directory of training scripts, kept locally and as a snapshot in the workspace's blob storage. Snapshots are used to run the experiment and to audit its history.",
  ],
  [
    'S8.3',
    'Training',
    "Called with a snapshot id, AML creates a run id (optional) and an AML token that the compute target later uses to reach AML. On unmanaged compute (VMs, HDInsight), reached with SSH credentials from the platform key vault (S6.2), management code prepares the environment (optionally Docker), downloads the code, sets environment variables and configuration, and runs the user's script. On managed compute (Machine Learning Compute, in the platform subscription, reached with the workspace's managed identity), AML builds the Docker image remotely if needed, writes the management code to the user's Azure Files share and starts the container with that code as its initial command.",
  ],
  [
    'S8.4',
    'Query runs and metrics',
    'The compute target writes the run\'s metrics from storage back into Cosmos DB; clients ask AML, which reads them from Cosmos DB and returns them.',
  ],
  [
    'S8.5',
    'Web services (inference)',
    'The user registers a model and creates an image from the model, a scoring file and dependencies; the Docker image is built and stored in the container registry, and a web service is deployed from it on ACI or AKS. Scoring details go to Application Insights, and telemetry is also sent to the platform subscription.',
  ],
];

export const REQUIREMENTS: Readonly<Record<string, Requirement>> = Object.fromEntries(
  ENTRIES.map(([id, title, text]) => [id, { id, section: id.slice(0, id.indexOf('.')), title, text }]),
);

/** The requirement of an id, or undefined for an id that names none (`constructor` included). */
export const requirement = (id: string): Requirement | undefined => (Object.hasOwn(REQUIREMENTS, id) ? REQUIREMENTS[id] : undefined);
