import { EVENT_CATALOG, computeKey, isKnownEventType } from '@amlsim/core';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ViewProps } from '../app';
import {
  CHARTS,
  CLUSTER_CITES,
  FONT,
  chartOf,
  clusterStateOf,
  defaultAggregate,
  labelLines,
  layoutChart,
  AggregateFolder,
  type Chart,
  type ChartKind,
  type ChartLayout,
  type LiveAggregate,
  type Measure,
} from '../statechart-graph';
import { Cites } from './cites';
import './statecharts.css';

/**
 * Statecharts of the session's aggregates (packages/web/src/statechart-graph.ts): each chart is
 * read off its XState machine and laid out by elkjs, the picked aggregate's current state
 * highlighted and its last transition drawn as it is taken. The cluster is a decide/evolve
 * workflow, not a statechart: its folded state (queue, nodes, reservations, idle timers) is shown.
 */
/** Events folded between two frames when the folder is far behind. */
const FOLD_SLICE = 5_000;

export function Statecharts({ moment, selected, select }: ViewProps) {
  // One folder per session's events: following the live log folds only what is new.
  const folder = useMemo(() => new AggregateFolder(moment.events), [moment.events]);
  // A long way ahead (a data dir of 100,000 events just opened) is folded in slices between
  // frames, so the rest of the page is drawn and stays live meanwhile; a step back starts from
  // the folder's nearest checkpoint and is done at once.
  const [folded, setFolded] = useState(0);
  const behind = moment.count - folder.folded;
  useEffect(() => {
    if (behind <= FOLD_SLICE) return;
    const timer = setTimeout(() => {
      folder.advanceTo(Math.min(moment.count, folder.folded + FOLD_SLICE));
      setFolded(folder.folded);
    }, 0);
    return () => clearTimeout(timer);
  });
  const aggregates = useMemo(() => (behind > FOLD_SLICE ? undefined : folder.at(moment.count)), [folder, moment.count, folded, behind > FOLD_SLICE]);
  const [picked, setPicked] = useState<string | undefined>(undefined);
  if (!aggregates) {
    return (
      <div class="panel statecharts" data-testid="statechart" data-aggregate="" data-current="">
        <p class="muted">
          Folding the aggregates: {folder.folded.toLocaleString('en-US')} of {moment.count.toLocaleString('en-US')} events…
        </p>
      </div>
    );
  }
  const shown = aggregates.find((a) => a.key === picked) ?? defaultAggregate(aggregates, selected?.position);

  if (!shown) {
    return (
      <div class="panel statecharts" data-testid="statechart" data-aggregate="" data-current="">
        <p class="muted">No aggregate yet at this point of the session: a workspace, run, node, image or web service appears with its first fact.</p>
      </div>
    );
  }
  return (
    <div class="panel statecharts" data-testid="statechart" data-aggregate={shown.key} data-kind={shown.kind} data-current={shown.current}>
      <label class="aggregate-pick">
        <span>Aggregate</span>
        <select aria-label="Aggregate" value={shown.key} onChange={(e) => setPicked((e.target as HTMLSelectElement).value)}>
          {aggregates.map((a) => (
            <option key={a.key} value={a.key}>
              {a.label} — {a.current}
            </option>
          ))}
        </select>
      </label>
      {shown.kind === 'cluster' ? <ClusterTable aggregate={shown} moment={moment} select={select} pick={(key) => aggregates.some((a) => a.key === key) && setPicked(key)} /> : <ChartView aggregate={shown} kind={shown.kind} select={select} />}
    </div>
  );
}

// ---- a statechart ------------------------------------------------------------------------------

/** Charts and layouts never change while the page runs: one of each per machine. */
const charts = new Map<ChartKind, Chart>();
const layouts = new Map<ChartKind, Promise<ChartLayout>>();
const chartFor = (kind: ChartKind): Chart => {
  let c = charts.get(kind);
  if (!c) charts.set(kind, (c = chartOf(CHARTS[kind].machine)));
  return c;
};
const layoutFor = (kind: ChartKind): Promise<ChartLayout> => {
  let l = layouts.get(kind);
  if (!l) layouts.set(kind, (l = layoutChart(chartFor(kind), pageMeasure())));
  return l;
};

/** Text widths in the page's own font, so the boxes elkjs sizes fit what the SVG draws. */
const pageMeasure = (): Measure | undefined => {
  const ctx = document.createElement('canvas').getContext('2d');
  if (!ctx) return undefined;
  const family = getComputedStyle(document.body).fontFamily || 'sans-serif';
  return (text, px) => {
    ctx.font = `${px === FONT.state ? 600 : 400} ${px}px ${family}`;
    return ctx.measureText(text).width;
  };
};

type ChartProps = { aggregate: LiveAggregate; kind: ChartKind; select: ViewProps['select'] };

function ChartView({ aggregate, kind, select }: ChartProps) {
  const chart = chartFor(kind);
  const [laid, setLaid] = useState<{ kind: ChartKind; layout: ChartLayout } | { kind: ChartKind; error: string } | undefined>(undefined);
  useEffect(() => {
    let live = true;
    layoutFor(kind).then(
      (layout) => live && setLaid({ kind, layout }),
      (e: unknown) => live && setLaid({ kind, error: String(e) }),
    );
    return () => {
      live = false;
    };
  }, [kind]);
  const { title, cites } = CHARTS[kind];
  const last = aggregate.last;
  const lastCites = isKnownEventType(last.event) ? EVENT_CATALOG[last.event].cites : [];
  return (
    <section class="chart-section">
      <h3>
        {title} statechart <Cites ids={cites} />
      </h3>
      <p class="chart-caption" data-testid="last-transition" data-event={last.event} data-position={last.position}>
        <span class="muted">last:</span> {last.from ?? <span class="muted">(start)</span>} → <b>{last.to}</b> on{' '}
        <button type="button" class="link" title="Open this event" onClick={() => select({ position: last.position })}>
          {last.event} (#{last.position})
        </button>{' '}
        {lastCites.length > 0 && <Cites ids={lastCites} />}
      </p>
      {laid?.kind !== kind ? (
        <p class="muted">Laying out the {title.toLowerCase()} chart…</p>
      ) : 'error' in laid ? (
        <p class="banner error">The chart could not be laid out: {laid.error}</p>
      ) : (
        <ChartSvg chart={chart} layout={laid.layout} aggregate={aggregate} select={select} />
      )}
      <Legend />
    </section>
  );
}

function ChartSvg({ chart, layout, aggregate, select }: { chart: Chart; layout: ChartLayout; aggregate: LiveAggregate; select: ViewProps['select'] }) {
  const active = new Set(aggregate.active);
  const leaf = aggregate.active.at(-1);
  const last = aggregate.last;
  const fromIds = new Set(chart.edges.filter((e) => e.id === last.edge).map((e) => e.source));
  // Containers first, so the states inside them are drawn over them; the last edge on top of the others.
  const depth = (id: string): number => {
    let d = 0;
    for (let n = chart.nodes.find((x) => x.id === id); n?.parent; n = chart.nodes.find((x) => x.id === n!.parent)) d++;
    return d;
  };
  const nodes = [...chart.nodes].sort((a, b) => depth(a.id) - depth(b.id));
  const edges = [...chart.edges].sort((a, b) => Number(a.id === last.edge) - Number(b.id === last.edge));
  // A chart larger than the pane is shown at full size and scrolled: bring the current state into view as it changes.
  const scroller = useRef<HTMLDivElement>(null);
  const reveal = () => {
    const box = leaf ? layout.nodes[leaf] : undefined;
    const el = scroller.current;
    if (!box || !el) return;
    const scale = el.scrollWidth / Math.max(1, layout.width);
    const left = (box.x + box.width / 2) * scale - el.clientWidth / 2;
    const top = (box.y + box.height / 2) * scale - el.clientHeight / 2;
    const smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    const visible = box.x * scale >= el.scrollLeft && (box.x + box.width) * scale <= el.scrollLeft + el.clientWidth && box.y * scale >= el.scrollTop && (box.y + box.height) * scale <= el.scrollTop + el.clientHeight;
    if (!visible) el.scrollTo({ left: Math.max(0, left), top: Math.max(0, top), behavior: 'auto' });
    // The scroll box itself may lie partly below the pane (presenter mode shrinks the pane): bring the state into the pane too.
    const current = el.querySelector('.sc-state.current');
    const pane = el.closest('.tab-body');
    if (current && pane) {
      const r = current.getBoundingClientRect();
      const p = pane.getBoundingClientRect();
      if (r.top < p.top || r.bottom > p.bottom) current.scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: smooth ? 'smooth' : 'auto' });
    }
  };
  useLayoutEffect(() => {
    reveal();
    // The chart grows in presenter mode: keep the current state in view then too.
    const svg = scroller.current?.firstElementChild;
    if (!svg) return;
    let size = svg.getBoundingClientRect().width;
    const observer = new ResizeObserver(() => {
      const now = svg.getBoundingClientRect().width;
      if (now !== size) reveal();
      size = now;
    });
    observer.observe(svg);
    return () => observer.disconnect();
  }, [leaf, layout]);
  return (
    <div class="chart-scroll" ref={scroller}>
      <svg
        class="statechart-svg"
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        width={layout.width}
        height={layout.height}
        style={{ '--w': layout.width }}
        role="img"
        aria-label={`${chart.id} statechart, current state ${aggregate.current}`}
      >
        <defs>
          <marker id="sc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="12" markerHeight="12" markerUnits="userSpaceOnUse" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
          <marker id="sc-arrow-last" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="12" markerHeight="12" markerUnits="userSpaceOnUse" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead last" />
          </marker>
        </defs>
        {nodes.map((n) => {
          const box = layout.nodes[n.id];
          if (!box) return null;
          if (n.kind === 'initial') {
            return (
              <g key={n.id} class="sc-initial" data-state={n.id}>
                <circle cx={box.x + box.width / 2} cy={box.y + box.height / 2} r={box.width / 2} />
              </g>
            );
          }
          const isCurrent = n.id === leaf;
          const cls = ['sc-state', `kind-${n.kind}`, isCurrent ? 'current' : active.has(n.id) ? 'active' : '', fromIds.has(n.id) ? 'from' : ''].filter(Boolean).join(' ');
          const tip = `${n.id}${n.internal.length > 0 ? `\ntakes without leaving: ${n.internal.join(', ')}` : ''}`;
          return (
            <g key={n.id} class={cls} data-state={n.id} aria-current={isCurrent ? 'true' : undefined}>
              <title>{tip}</title>
              <rect x={box.x} y={box.y} width={box.width} height={box.height} rx={n.kind === 'compound' ? 14 : 10} />
              {n.kind === 'final' && <rect class="inner" x={box.x + 4} y={box.y + 4} width={box.width - 8} height={box.height - 8} rx={7} />}
              {n.kind === 'compound' ? (
                <text class="sc-name" x={box.x + 14} y={box.y + 24}>
                  {n.label}
                </text>
              ) : (
                <text class="sc-name" x={box.x + box.width / 2} y={box.y + box.height / 2} text-anchor="middle" dominant-baseline="central">
                  {n.label}
                </text>
              )}
            </g>
          );
        })}
        {edges.map((e) => {
          const el = layout.edges[e.id];
          if (!el || el.points.length < 2) return null;
          const isLast = e.id === last.edge;
          const d = el.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x},${y}`).join(' ');
          const lines = labelLines(e.events);
          return (
            <g key={e.id} class={`sc-edge${isLast ? ' last' : ''}${e.initial ? ' initial' : ''}`} data-edge={e.id} data-events={e.events.join(' ')}>
              <title>{`${e.source === chart.id ? `any state of ${chart.id}` : e.source} → ${e.target}${e.events.length ? ` on ${e.events.join(', ')}` : ' (initial state)'}`}</title>
              {/* Keyed on the fact's position: a new transition remounts the path and its animation plays again. */}
              <path key={isLast ? `last@${last.position}` : 'edge'} d={d} pathLength={100} marker-end={`url(#${isLast ? 'sc-arrow-last' : 'sc-arrow'})`} />
              {el.label && lines.length > 0 && (
                <text
                  class="sc-label"
                  x={el.label.x + 3}
                  y={el.label.y + 3}
                  onClick={isLast ? () => select({ position: last.position }) : undefined}
                >
                  {lines.map((line, i) => (
                    <tspan key={i} x={el.label!.x + 3} dy={i === 0 ? FONT.event : FONT.line} class={isLast && isLastEventLine(e.events, i, last.event) ? 'taken' : undefined}>
                      {line}
                    </tspan>
                  ))}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

/** Whether label line `i` (events broken into lines by labelLines) belongs to the event type `event`. */
const isLastEventLine = (events: readonly string[], i: number, event: string): boolean => {
  let at = 0;
  for (const type of events) {
    const n = labelLines([type]).length;
    if (i < at + n) return type === event;
    at += n;
  }
  return false;
};

function Legend() {
  return (
    <p class="legend">
      <span class="legend-state current" /> current state <span class="legend-state active" /> its parent state <span class="legend-edge" /> last transition{' '}
      <span class="legend-initial" /> initial state · a dashed border is the state it left · a double border is a final state · hover a state for the facts it takes without leaving it
    </p>
  );
}

// ---- the cluster -------------------------------------------------------------------------------

type ClusterProps = { aggregate: LiveAggregate; moment: ViewProps['moment']; select: ViewProps['select']; pick: (key: string) => void };

function ClusterTable({ aggregate, moment, select, pick }: ClusterProps) {
  const view = useMemo(() => clusterStateOf(moment.events, moment.count, aggregate.key), [moment.events, moment.count, aggregate.key]);
  if (!view) return null;
  const now = moment.count > 0 ? Date.parse(moment.events[moment.count - 1]!.meta.at) : 0;
  const { spec } = view;
  // A run or node named here opens its own statechart.
  const run = (id: string) => (
    <button type="button" class="link" title="Show this run's statechart" onClick={() => pick(`run:${id}`)}>
      {id}
    </button>
  );
  return (
    <section class="cluster-state" data-testid="cluster-state">
      <h3>
        Cluster {spec.compute}: its workflow state <Cites ids={CLUSTER_CITES} />
      </h3>
      <p class="muted">
        Not a statechart: a decide/evolve workflow, folded from the log. {spec.minNodes}–{spec.maxNodes} nodes; an idle node goes after {spec.idleSecondsBeforeScaledown} s
        with nothing queued <Cites ids={['S4.6']} />. Last fact:{' '}
        <button type="button" class="link" onClick={() => select({ position: aggregate.last.position })}>
          {aggregate.last.event} (#{aggregate.last.position})
        </button>
      </p>
      <h4>Queue</h4>
      {view.queue.length + view.asking.length === 0 ? (
        <p class="muted">No run waits for a node.</p>
      ) : (
        <ol class="cluster-queue" data-testid="cluster-queue">
          {view.queue.map((r) => (
            <li key={r} data-run={r}>
              {run(r)}
              {Object.values(view.state.promised).includes(r) && <span class="muted"> (a node is promised)</span>}
            </li>
          ))}
          {view.asking.map((r) => (
            <li key={r} data-run={r}>
              {run(r)} <span class="muted">asking, not queued yet</span>
            </li>
          ))}
        </ol>
      )}
      <h4>Nodes</h4>
      {view.nodes.length === 0 ? (
        <p class="muted">No node: the cluster is scaled to zero.</p>
      ) : (
        <table class="cluster-nodes" data-testid="cluster-nodes">
          <thead>
            <tr>
              <th>node</th>
              <th>state</th>
              <th>run / reserved for</th>
              <th>idle timer</th>
            </tr>
          </thead>
          <tbody>
            {view.nodes.map((n) => (
              <tr key={n.node} data-node={n.node} data-state={n.state}>
                <td>
                  <button type="button" class="link" title="Show this node's statechart" onClick={() => pick(`node:${computeKey(spec.workspaceId, spec.compute)}/${n.node}`)}>
                    {n.node}
                  </button>
                </td>
                <td>
                  <span class={`node-state s-${n.state}`}>{n.state}</span>
                  {n.failure && <div class="muted">{n.failure}</div>}
                </td>
                <td>
                  {n.run ? run(n.run) : n.promisedTo ? <>promised to {run(n.promisedTo)}</> : n.forRun ? <>provisioned for {run(n.forRun)}</> : <span class="muted">—</span>}
                </td>
                <td>
                  {n.scaleDownAtMs !== undefined ? (
                    <>
                      idle since {clock(n.idleSinceMs!)}; {n.scaleDownAtMs > now ? <>scale-down in {Math.ceil((n.scaleDownAtMs - now) / 1000)} s</> : <>due (nothing queued: it goes)</>}
                    </>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const pad = (n: number) => String(n).padStart(2, '0');
/** Platform clock time (UTC, as the log records it). */
const clock = (t: number): string => {
  const d = new Date(t);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
};
