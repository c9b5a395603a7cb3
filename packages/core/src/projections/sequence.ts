import { LANES, arrowOf, isKnownEventType, type Lane } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';

/**
 * Who talks to whom, drawn from the log: each event is an arrow from the party that acted to
 * the party it acted on (`from` and `to` in packages/core/src/events/catalog.ts), rendered as a
 * Mermaid `sequenceDiagram` or as a self-contained HTML timeline (`amlsim export`,
 * packages/cli/src/export.ts; docs/flows/ is made of these by scripts/gen-flow-docs.ts).
 *
 * Pure: events in, text out. The log holds no secret value (docs/architecture.md, "Events"), and
 * nothing here adds one: tokens appear by fingerprint, never by id or value.
 */

/** How to draw one log. */
export type SequenceOptions = {
  /**
   * Output that does not change between two runs of the same scenario, for documents kept in
   * the repository: ids, fingerprints and channels are aliased in order of appearance
   * (`ws1`, `r1`, `fp1` …) and times left out.
   */
  stable?: boolean;
  /** Also draw the simulator's own bookkeeping (scenario steps, effect starts). */
  bookkeeping?: boolean;
  /** The page's title (HTML) or the diagram's (Mermaid). */
  title?: string;
};

/** How each party is named in a diagram. */
export const PARTY_NAMES: Readonly<Record<Lane, string>> = {
  Client: 'Client',
  AAD: 'Azure AD',
  ARM: 'ARM',
  RP: 'AML resource provider',
  KeyVault: 'Key Vault',
  Storage: 'Storage',
  Registry: 'Container registry',
  AppInsights: 'App Insights',
  Monitor: 'Azure Monitor',
  Compute: 'Compute (node, container, VM)',
  Webservice: 'Web service (gateway, replicas)',
  CosmosDB: 'Metric store (Cosmos DB)',
  Platform: 'Simulator',
};

/** Calls a party refused: drawn as a crossed arrow with the error code. */
export const REFUSALS: ReadonlySet<string> = new Set(['CommandRejected', 'RunCallRefused', 'SignInFailed', 'VmLoginRefused']);
/** Work that ended in failure (not a refused call): drawn as a dotted crossed arrow. */
const FAILURES: ReadonlySet<string> = new Set([
  'ProvisioningFailed',
  'WorkspaceCreationFailed',
  'NodeProvisioningFailed',
  'RunFailed',
  'ImageCreationFailed',
  'ImageCreationTimedOut',
  'WebserviceFailed',
  'WebserviceUnhealthy',
  'WebserviceUnschedulable',
]);
/** The simulator's notes about itself, left out unless asked for: they are no party's call. */
const BOOKKEEPING: ReadonlySet<string> = new Set(['EffectStarted', 'ScenarioStarted', 'ScenarioStepEnded']);

/** Payload fields that hold an id of something the platform made, and the alias prefix of each. */
const ID_FIELDS: Readonly<Record<string, string>> = {
  workspaceId: 'ws',
  runId: 'r',
  forRun: 'r',
  tokenRun: 'r',
  computeId: 'c',
  vmId: 'vm',
  imageId: 'img',
  serviceId: 'svc',
  modelId: 'm',
  snapshotId: 'snap',
  principalId: 'p',
  assignmentId: 'ra',
  tenantId: 't',
  tokenId: 'tok',
  replacedToken: 'tok',
  channel: 'ch',
  fingerprint: 'fp',
  primary: 'fp',
  secondary: 'fp',
  digest: 'digest',
  made: 'id',
};

/**
 * Fields a short detail leaves out: joins (the names beside them say the same), tokens' ids
 * (a token is shown by its fingerprint), and what differs from run to run without telling the
 * reader anything (paths in temporary dirs, process ids, ports, durations, times).
 */
const NOT_DETAIL: ReadonlySet<string> = new Set([
  'tenantId', 'workspaceId', 'principalId', 'assignmentId', 'computeId', 'vmId', 'imageId', 'serviceId', 'modelId', 'snapshotId',
  'tokenId', 'issuer', 'reason', 'channel', 'socket', 'osDisk', 'tempDisk', 'workDir', 'keyVault', 'storageAccount', 'blobContainer',
  'fileShare', 'vault', 'appInsights', 'registry', 'expiresAt', 'refreshBy', 'rows', 'digest', 'scoringUri', 'caCert', 'container',
  'at', 'idleSince', 'lastHeartbeatAt', 'silentForMs', 'downForMs', 'durationMs', 'DurationMs', 'RequestId', 'RequestUrl', 'UserAgent', 'ComputeType',
  'tail', 'params', 'effectId', 'file', 'pid', 'host', 'memoryBytes', 'primary', 'secondary', 'location', 'repository', 'tag', 'osDiskDeleted',
  'osDiskEncrypted', 'tempDiskEncrypted', 'fingerprint', 'files', 'tags', 'dependencies', 'args', 'scope', 'amr', 'audience', 'session', 'by', 'made', 'line',
]);
/** At most this many fields in a detail, and this long a value: an arrow's label stays one short line. */
const DETAIL_FIELDS = 3;
const DETAIL_VALUE_CHARS = 40;

/** The events a diagram draws, in log order: without bookkeeping unless asked for. */
export const drawnEvents = (events: readonly StoredEvent[], options: SequenceOptions = {}): StoredEvent[] =>
  events.filter((e) => options.bookkeeping === true || !BOOKKEEPING.has(e.type));

/**
 * Aliases for the ids of a list of events, in order of appearance: the first workspace id is
 * `ws1`, the second run `r2`, the third fingerprint `fp3`. Returns a function that rewrites
 * every id it knows inside a text (a run id inside a path, too).
 */
export const idAliases = (events: readonly StoredEvent[]): ((text: string) => string) => {
  const aliases = new Map<string, string>();
  const counts = new Map<string, number>();
  const note = (prefix: string, value: unknown) => {
    if (typeof value !== 'string' || value.length < 4 || aliases.has(value)) return;
    const n = (counts.get(prefix) ?? 0) + 1;
    counts.set(prefix, n);
    aliases.set(value, `${prefix}${n}`);
  };
  for (const e of events) {
    for (const [field, value] of Object.entries(e.data)) {
      const prefix = ID_FIELDS[field];
      if (prefix === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) note(prefix, v);
    }
    note('ch', e.meta.channel);
  }
  // Longest first: an id that contains another (a run id inside a path) is replaced whole.
  const known = [...aliases.keys()].sort((a, b) => b.length - a.length);
  if (known.length === 0) return (text) => text;
  const pattern = new RegExp(known.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => text.replace(pattern, (id) => aliases.get(id) ?? id);
};

const showValue = (value: unknown): string | undefined => {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.every((v) => typeof v !== 'object' || v === null) ? value.join(',') : `${value.length} items`;
  if (typeof value === 'object') return undefined;
  return String(value);
};

/**
 * A short detail of an event: a refusal's error code first, a token's fingerprint, then the
 * first few fields that name what it is about (payload order), as `key=value`.
 */
export const eventDetail = (e: StoredEvent): string => {
  const parts: string[] = [];
  const code = e.data['code'];
  if (REFUSALS.has(e.type)) parts.push(typeof code === 'string' ? code : 'refused');
  for (const [key, value] of Object.entries(e.data)) {
    if (parts.length >= DETAIL_FIELDS + (REFUSALS.has(e.type) ? 1 : 0)) break;
    if (key === 'code' || NOT_DETAIL.has(key)) continue;
    // A client's call names its caller once, before the type (callerOf).
    if (key === 'principal' && value === e.meta.principal && arrowOf(e.type).from === 'Client') continue;
    if (key === 'workspace' && ('runId' in e.data || 'serviceId' in e.data || 'imageId' in e.data || 'computeId' in e.data)) continue;
    const shown = showValue(value);
    if (shown === undefined || shown === '' || shown.length > DETAIL_VALUE_CHARS) continue;
    parts.push(`${key === 'runId' ? 'run' : key}=${shown}`);
  }
  const fingerprint = e.data['fingerprint'];
  if (typeof fingerprint === 'string') parts.push(`fp=${fingerprint}`);
  return parts.join(' ');
};

/** The caller of an event that a client made, when the log names one. */
const callerOf = (e: StoredEvent): string | undefined => (arrowOf(e.type).from === 'Client' && e.meta.principal ? e.meta.principal : undefined);

/** One drawn arrow: what both renderings show of an event. */
export type SequenceArrow = {
  position: number;
  from: Lane;
  to: Lane;
  type: string;
  caller?: string;
  detail: string;
  kind: 'call' | 'refused' | 'failed';
  /** Milliseconds since the first drawn event (left out when stable). */
  sinceStartMs?: number;
  known: boolean;
};

/** The arrows of a log, ids aliased when stable. */
export const sequenceArrows = (events: readonly StoredEvent[], options: SequenceOptions = {}): SequenceArrow[] => {
  const drawn = drawnEvents(events, options);
  const alias = options.stable ? idAliases(drawn) : (text: string) => text;
  const start = drawn[0] ? Date.parse(drawn[0].meta.at) : 0;
  return drawn.map((e, i) => {
    const { from, to } = arrowOf(e.type);
    const caller = callerOf(e);
    return {
      position: options.stable ? i + 1 : e.position,
      from,
      to,
      type: e.type,
      ...(caller ? { caller } : {}),
      detail: alias(eventDetail(e)),
      kind: REFUSALS.has(e.type) ? 'refused' : FAILURES.has(e.type) ? 'failed' : 'call',
      ...(options.stable ? {} : { sinceStartMs: Date.parse(e.meta.at) - start }),
      known: isKnownEventType(e.type),
    };
  });
};

/** The parties the arrows touch, in the fixed order of LANES. */
const partiesOf = (arrows: readonly SequenceArrow[]): Lane[] => LANES.filter((lane) => arrows.some((a) => a.from === lane || a.to === lane));

/**
 * Text safe in a Mermaid message or alias: `;` ends a statement and `#` starts an entity, `<`
 * and `>` may be read as HTML; each becomes Mermaid's own entity code.
 */
const mermaidText = (text: string): string =>
  text.replace(/[\r\n]+/g, ' ').replace(/[#;<>]/g, (c) => `#${c.charCodeAt(0)};`);

/** The arrow of each kind of event: a call `->>`, a refused call `-x`, failed work `--x`. */
const MERMAID_ARROWS: Readonly<Record<SequenceArrow['kind'], string>> = { call: '->>', refused: '-x', failed: '--x' };

/** The log as a Mermaid `sequenceDiagram`: one arrow per event, its type and a short detail. */
export const renderMermaidSequence = (events: readonly StoredEvent[], options: SequenceOptions = {}): string => {
  const arrows = sequenceArrows(events, options);
  const lines = ['sequenceDiagram'];
  if (options.title) lines.push(`  title ${mermaidText(options.title)}`);
  for (const party of partiesOf(arrows)) lines.push(`  participant ${party} as ${mermaidText(PARTY_NAMES[party])}`);
  for (const a of arrows) {
    const label = [a.caller ? `${a.caller}: ${a.type}` : a.type, a.kind === 'refused' ? `✗ ${a.detail}` : a.detail].filter(Boolean).join(' ');
    lines.push(`  ${a.from}${MERMAID_ARROWS[a.kind]}${a.to}: ${mermaidText(label)}`);
  }
  return `${lines.join('\n')}\n`;
};

const html = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * Inline styles only: the page is opened from a file with no network, so nothing is fetched
 * (no script, no font, no stylesheet from elsewhere).
 */
const PAGE_STYLE = `
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; background: #fff; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  p.note { color: #555; margin: 0 0 1rem; }
  .lanes { display: grid; gap: 0; align-items: center; }
  .head { position: sticky; top: 0; background: #f4f4f4; font-weight: 600; text-align: center; padding: .4rem .2rem; border-bottom: 1px solid #ccc; font-size: .85rem; }
  .num { grid-column: 1; }
  .time { grid-column: 2; }
  .num, .time { font: 12px ui-monospace, monospace; color: #777; padding: .15rem .4rem; text-align: right; border-bottom: 1px solid #eee; }
  .arrow { position: relative; border-bottom: 1px solid #eee; padding: .15rem .3rem; min-height: 2.1rem; }
  .arrow .line { position: absolute; left: .6rem; right: .6rem; bottom: .35rem; border-top: 2px solid #3b6db3; }
  .arrow.rtl .line::after, .arrow.ltr .line::after { content: ''; position: absolute; top: -7px; border: 6px solid transparent; }
  .arrow.ltr .line::after { right: -2px; border-left: 9px solid #3b6db3; border-right: 0; }
  .arrow.rtl .line::after { left: -2px; border-right: 9px solid #3b6db3; border-left: 0; }
  .arrow.self .line { left: 30%; right: 30%; border-style: dotted; }
  .arrow .label { position: relative; font-size: .85rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; display: block; padding-bottom: .5rem; }
  .arrow .type { font-weight: 600; }
  .arrow .detail { font: 12px ui-monospace, monospace; color: #444; }
  .refused .line, .failed .line { border-top-color: #c62828; }
  .refused.ltr .line::after, .failed.ltr .line::after { border-left-color: #c62828; }
  .refused.rtl .line::after, .failed.rtl .line::after { border-right-color: #c62828; }
  .failed .line { border-top-style: dashed; }
  .refused .type, .failed .type { color: #c62828; }
`;

/** The log as a self-contained HTML page: one row per event, an arrow between the party columns. */
export const renderTimelineHtml = (events: readonly StoredEvent[], options: SequenceOptions = {}): string => {
  const arrows = sequenceArrows(events, options);
  const parties = partiesOf(arrows);
  const title = options.title ?? 'amlsim timeline';
  const column = (lane: Lane) => parties.indexOf(lane) + 3; // after the number and time columns
  const rows = arrows.map((a) => {
    const [left, right] = [Math.min(column(a.from), column(a.to)), Math.max(column(a.from), column(a.to))];
    const direction = a.from === a.to ? 'self' : column(a.from) < column(a.to) ? 'ltr' : 'rtl';
    const time = a.sinceStartMs === undefined ? '' : `+${(a.sinceStartMs / 1000).toFixed(3)}s`;
    const mark = a.kind === 'refused' ? '✗ ' : '';
    const caller = a.caller ? `${html(a.caller)}: ` : '';
    const about = `${a.from} → ${a.to}${a.known ? '' : ' (not in the event catalog)'}`;
    return [
      `<div class="num">${a.position}</div>`,
      `<div class="time">${time}</div>`,
      `<div class="arrow ${a.kind} ${direction}" style="grid-column: ${left} / ${right + 1}" title="${html(about)}">`,
      `<span class="label">${mark}${caller}<span class="type">${html(a.type)}</span> <span class="detail">${html(a.detail)}</span></span><span class="line"></span></div>`,
    ].join('');
  });
  const heads = parties.map((p, i) => `<div class="head" style="grid-column: ${i + 3}">${html(PARTY_NAMES[p])}</div>`).join('');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${html(title)}</title>`,
    `<style>${PAGE_STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>${html(title)}</h1>`,
    `<p class="note">${arrows.length} events, each an arrow from the party that acted to the party it acted on; refused calls and failed work in red. Tokens are shown by fingerprint only.</p>`,
    `<div class="lanes" style="grid-template-columns: 3rem 5.5rem repeat(${Math.max(parties.length, 1)}, minmax(7rem, 1fr))">`,
    `<div class="head" style="grid-column: 1">#</div><div class="head" style="grid-column: 2">${options.stable ? '' : 'time'}</div>${heads}`,
    ...rows,
    '</div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
};

