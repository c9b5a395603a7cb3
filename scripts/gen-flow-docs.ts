/**
 * Generates docs/flows/: one Markdown file per documented flow of the seed, each a caption and
 * the Mermaid sequence diagram that `amlsim export --stable` draws of the repository's scenario
 * that plays it (packages/cli/src/export.ts plays the scenario; packages/core/src/projections/sequence.ts
 * draws it).
 *
 *   pnpm tsx scripts/gen-flow-docs.ts            # every flow
 *   pnpm tsx scripts/gen-flow-docs.ts inference  # only the flows whose file name contains "inference"
 *
 * test/flows.test.ts fails when a file of docs/flows/ differs from what this renders.
 *
 * A scenario plays more than its flow (sign-ins, a workspace, refusals of other steps), so each
 * flow says which of its events it draws, in one of two ways:
 *  - `steps`: the events of the scenario steps with these verbs. A step's events are those
 *    recorded before the `ScenarioStepEnded` that closes it (the scenario's own bookkeeping).
 *    Used for flows whose events are all recorded while their step runs.
 *  - `range`: from the first event matching `from` through the first after it matching
 *    `through`, in log order. Used for runs, whose container runs down after `waitForRun` has returned: step
 *    boundaries would cut those events off one run and keep them the next.
 * Ids, fingerprints and channels are aliased in order of appearance and times left out (the
 * `stable` rendering), so that two runs of a scenario give the same file.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMermaidSequence, type StoredEvent } from '@amlsim/core';
import { playScenarioForExport } from '@amlsim/cli';

const REPO = join(import.meta.dirname, '..');
export const FLOW_DOCS_DIR = join(REPO, 'docs', 'flows');

/** An event type, and payload fields it must have. */
type EventMatcher = { type: string; data?: Record<string, unknown> };

export type Flow = {
  /** The file under docs/flows/. */
  file: string;
  title: string;
  /** The scenario under scenarios/ that plays it. */
  scenario: string;
  /** The process driver unless the flow needs containers (images and web services do). */
  driver: 'process' | 'docker';
  /** What the diagram shows, for the caption (the S-ids the scenario cites are added). */
  caption: string;
} & ({ steps: readonly string[] } | { range: { from: EventMatcher; through: EventMatcher } });

export const FLOWS: readonly Flow[] = [
  {
    file: 'workspace-creation.md',
    title: 'Workspace creation',
    scenario: 'workspace-creation.yaml',
    driver: 'process',
    steps: ['signIn', 'createWorkspace'],
    caption:
      'A user signs in to Azure AD and gets an ARM token; ARM asks the AML resource provider to create the workspace, which provisions its Key Vault, Storage (the connection string goes to the vault), Container Registry and App Insights in the user\'s subscription, creates the managed identity and has ARM grant it its roles; the first workspace of a region brings AML\'s support application. A second workspace of the same name is refused.',
  },
  {
    file: 'code-snapshot.md',
    title: 'Code snapshot',
    scenario: 'snapshot.yaml',
    driver: 'process',
    steps: ['snapshot'],
    caption:
      'The client packs an experiment\'s directory (honouring .amlignore), content-hashes it and stores it, encrypted, in the workspace\'s blob storage; the same content gives the same snapshot, stored once. A missing directory and a Reader\'s snapshot are refused.',
  },
  {
    file: 'training-managed-compute.md',
    title: 'Training on managed compute',
    scenario: 'train-managed-compute.yaml',
    driver: 'process',
    range: { from: { type: 'CommandRejected', data: { command: 'SubmitRun' } }, through: { type: 'RunChannelClosed' } },
    caption:
      'A Reader\'s run is refused. The owner\'s run: the snapshot is stored, AML opens the run\'s control-plane channel and issues a run token scoped to the workspace and the run, prepares the image, writes the management code to the file share, scales the AmlCompute cluster up and starts the container on the node; the management code reports its steps over the channel, uploads logs and outputs and writes the metrics back with the run token; then the token is revoked and the node goes back to the cluster.',
  },
  {
    file: 'training-attached-vm.md',
    title: 'Training on unmanaged compute (an attached VM)',
    scenario: 'train-attached-vm.yaml',
    driver: 'process',
    range: { from: { type: 'VmCreated' }, through: { type: 'RunChannelClosed' } },
    caption:
      'The user\'s VM is attached with its password used once: AML generates its own SSH key pair, keeps the private key in the platform\'s key vault and has the VM authorize the public key (a Reader, a wrong password and a VM without password login are refused). A run on it: AML logs in with the platform key, starts the management code with the run token, which takes its four steps over the VM\'s channel and writes the metrics back; the token dies with the run.',
  },
  {
    file: 'metric-write-back.md',
    title: 'Metric write-back',
    scenario: 'metric-writeback.yaml',
    driver: 'process',
    range: { from: { type: 'RunStatusReported', data: { status: 'Finalizing' } }, through: { type: 'RunTokenRevoked' } },
    caption:
      'After the user\'s script ends, the management code writes the metrics it kept locally back to the metric store (Cosmos DB in the platform\'s subscription) with the run token, at most 250 rows a call; then the run completes and its token is revoked. Clients read the metrics through AML.',
  },
  {
    file: 'inference.md',
    title: 'Inference: image build and deployment',
    scenario: 'webservice-aci.yaml',
    driver: 'docker',
    range: { from: { type: 'ModelRegistered' }, through: { type: 'PlatformTelemetryPushed' } },
    caption:
      'A registered model, a scoring script and its dependencies become an image: built on the Node base, its scoring script checked inside it, pushed to the workspace\'s container registry with credentials from the key vault. Deployments asking for what ACI does not offer, or made by a Reader, are refused; the service is deployed as a replica container behind the platform\'s HTTPS scoring gateway, and its first scoring request is recorded in App Insights and in the platform\'s own telemetry.',
  },
];

const matches = (e: StoredEvent, m: EventMatcher): boolean =>
  e.type === m.type && Object.entries(m.data ?? {}).every(([k, v]) => e.data[k] === v);

/** The events of the scenario steps with these verbs (see the file's comment). */
export const eventsOfSteps = (events: readonly StoredEvent[], verbs: readonly string[]): StoredEvent[] => {
  const chosen: StoredEvent[] = [];
  let step: StoredEvent[] = [];
  let started = false;
  for (const e of events) {
    if (e.type === 'ScenarioStarted') {
      started = true;
      step = [];
      continue;
    }
    if (!started) continue; // the tenant the scenario declares, set up before its steps
    if (e.type === 'ScenarioStepEnded') {
      if (verbs.includes(String(e.data['verb']))) chosen.push(...step);
      step = [];
      continue;
    }
    step.push(e);
  }
  return chosen;
};

/** From the first event matching `from` through the first after it matching `through`. */
export const eventsInRange = (events: readonly StoredEvent[], range: { from: EventMatcher; through: EventMatcher }): StoredEvent[] => {
  const first = events.findIndex((e) => matches(e, range.from));
  const last = first < 0 ? -1 : events.findIndex((e, i) => i >= first && matches(e, range.through));
  if (first < 0 || last < 0) throw new Error(`no events from ${JSON.stringify(range.from)} through ${JSON.stringify(range.through)}`);
  return events.slice(first, last + 1);
};

const howChosen = (flow: Flow): string =>
  'steps' in flow
    ? `the events of its ${flow.steps.map((v) => `\`${v}\``).join(' and ')} steps`
    : `its events from the first \`${flow.range.from.type}\`${flow.range.from.data ? ` (${Object.entries(flow.range.from.data).map(([k, v]) => `${k} ${String(v)}`).join(', ')})` : ''} through the next \`${flow.range.through.type}\``;

/** The whole of one docs/flows/ file. Plays the flow's scenario. */
export const renderFlow = async (flow: Flow): Promise<string> => {
  const played = await playScenarioForExport(join(REPO, 'scenarios', flow.scenario), { driver: flow.driver });
  if (!played.passed) throw new Error(`scenarios/${flow.scenario} did not pass on the ${flow.driver} driver; run it with amlsim run to see why`);
  const events = 'steps' in flow ? eventsOfSteps(played.events, flow.steps) : eventsInRange(played.events, flow.range);
  const cites = played.cites.length ? ` It shows ${played.cites.join(', ')} (the requirement ids [scenarios/${flow.scenario}](../../scenarios/${flow.scenario}) cites).` : '';
  return [
    `# ${flow.title}`,
    '',
    `<!-- Generated by scripts/gen-flow-docs.ts from scenarios/${flow.scenario}. Do not edit by hand:`,
    `     run \`pnpm tsx scripts/gen-flow-docs.ts\`. -->`,
    '',
    `${flow.caption}${cites} Drawn as \`amlsim export scenarios/${flow.scenario} --stable${flow.driver === 'docker' ? ' --driver docker' : ''}\` draws the scenario, keeping ${howChosen(flow)}; each arrow goes from the party that acted to the party it acted on, a crossed arrow is a refused call with its error code, ids are aliased in order of appearance and tokens shown by fingerprint only.`,
    '',
    '```mermaid',
    renderMermaidSequence(events, { stable: true }).trimEnd(),
    '```',
    '',
  ].join('\n');
};

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const only = process.argv[2];
  mkdirSync(FLOW_DOCS_DIR, { recursive: true });
  for (const flow of FLOWS.filter((f) => only === undefined || f.file.includes(only))) {
    const file = join(FLOW_DOCS_DIR, flow.file);
    const text = await renderFlow(flow);
    const before = (() => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return undefined;
      }
    })();
    writeFileSync(file, text);
    process.stdout.write(`${before === text ? 'unchanged' : 'wrote'} ${file}\n`);
  }
  // Played platforms may leave a timer or socket behind; the files are written.
  process.exit(0);
}
