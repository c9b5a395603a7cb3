import { EVENT_CATALOG, LANES, PARTY_NAMES, drawnEvents, isKnownEventType, sequenceArrows, type Lane, type SequenceArrow, type StoredEvent } from '@amlsim/core';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ViewProps } from '../app';
import { countUpTo } from '../timeline';

/**
 * The sequence diagram: one lane per party, one arrow per event from the party that acted to the
 * party it acted on — the catalog's `from` and `to` (packages/core/src/events/catalog.ts), drawn
 * by the same `sequenceArrows` that `amlsim export` renders, so the page, the timeline and the
 * exports agree. Refused calls are red and crossed; a click on an arrow explains it.
 *
 * Rows are virtual: only those in view are in the DOM, so a session of 100,000 events scrolls
 * as lightly as one of 100. While the view follows the live log it stays at the newest arrow.
 */
/** Row and header heights: presenter mode's larger type needs taller rows. */
const rowHeight = () => (document.body.classList.contains('presenter') ? 46 : 30);
const headHeight = () => (document.body.classList.contains('presenter') ? 64 : 44);
const OVERSCAN = 12;

/**
 * A session's drawn events (bookkeeping left out), extended as the session grows, and the arrows
 * of those in view, made when first drawn: making every arrow up front (its detail text) cost
 * ~130 ms at 100,000 events before the first render, for the ~50 rows ever in view at once.
 */
type Arrows = { done: number; drawn: StoredEvent[]; arrows: Map<number, SequenceArrow> };
const cache = new WeakMap<readonly StoredEvent[], Arrows>();
const arrowsOf = (events: readonly StoredEvent[]): Arrows => {
  let entry = cache.get(events);
  if (!entry) {
    entry = { done: 0, drawn: [], arrows: new Map() };
    cache.set(events, entry);
  }
  if (entry.done < events.length) {
    for (const e of drawnEvents(events.slice(entry.done))) entry.drawn.push(e);
    entry.done = events.length;
  }
  return entry;
};
const arrowAt = (entry: Arrows, i: number): SequenceArrow => {
  let arrow = entry.arrows.get(i);
  if (!arrow) {
    // The same arrow `sequenceArrows` makes of the whole log (its timing aside, not drawn here).
    arrow = sequenceArrows([entry.drawn[i]!])[0]!;
    entry.arrows.set(i, arrow);
  }
  return arrow;
};

/** The parties drawn: every lane but the simulator's own, which only bookkeeping would use. */
const DRAWN_LANES: readonly Lane[] = LANES.filter((l) => l !== 'Platform');

export function SequenceView({ moment, selected, select }: ViewProps) {
  const ROW = rowHeight();
  const HEAD = headHeight();
  const arrows = arrowsOf(moment.events);
  const shown = countUpTo(arrows.drawn, moment.position);
  const scroller = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(1000);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const stick = useRef(true);
  const previousShown = useRef(shown);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(() => {
      setWidth(el.clientWidth);
      setHeight(el.clientHeight);
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  // Follow the newest arrow shown (live, or the slider's point), unless the user scrolled up.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stick.current) {
      el.scrollTop = el.scrollHeight;
      setScrollTop(el.scrollTop);
    }
  }, [shown, height]);
  useEffect(() => {
    previousShown.current = shown;
  }, [shown]);

  const laneWidth = width / DRAWN_LANES.length;
  const x = (lane: Lane) => (Math.max(0, DRAWN_LANES.indexOf(lane)) + 0.5) * laneWidth;
  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(shown, Math.ceil((scrollTop + height) / ROW) + OVERSCAN);
  const fresh = moment.live ? previousShown.current : shown;
  const selectedPosition = selected?.position;

  // A label that would run past the right edge is moved left to end inside the diagram (an
  // estimate of its width from its length: measuring each label would cost a layout per row).
  const charPx = ROW > 30 ? 11.5 : 7.4;
  const labelX = (start: number, chars: number) => Math.max(4, Math.min(start, width - 8 - chars * charPx));
  const rows = [];
  for (let i = first; i < last; i++) {
    const a = arrowAt(arrows, i);
    const y = i * ROW + ROW / 2;
    const x1 = x(a.from);
    const x2 = x(a.to);
    const self = a.from === a.to;
    const left = Math.min(x1, x2);
    const label = `${a.caller ? `${a.caller}: ` : ''}${a.type}`;
    const cites = isKnownEventType(a.type) ? EVENT_CATALOG[a.type as keyof typeof EVENT_CATALOG].cites : [];
    rows.push(
      <g
        key={a.position}
        class={`arrow kind-${a.kind}${i >= fresh ? ' fresh' : ''}${a.position === selectedPosition ? ' selected' : ''}`}
        data-position={a.position}
        data-type={a.type}
        data-from={a.from}
        data-to={a.to}
        data-kind={a.kind}
        data-cites={cites.join(' ')}
        onClick={() => select({ position: a.position })}
      >
        <rect class="hit" x={0} y={i * ROW} width={width} height={ROW} />
        {self ? (
          <path class="line" d={`M ${x1} ${y - 7} h 22 v 14 h -20`} marker-end={`url(#head-${a.kind})`} />
        ) : (
          <line class="line" x1={x1} y1={y} x2={x2 + (x2 > x1 ? -4 : 4)} y2={y} marker-end={`url(#head-${a.kind})`} />
        )}
        {a.kind === 'refused' && <text class="cross" x={x2 + (x2 > x1 ? -14 : 14)} y={y + 5} text-anchor="middle">✗</text>}
        <text class="label" x={labelX(self ? x1 + 28 : left + 8, label.length + a.detail.length + 1)} y={y - 4}>
          {label}
          <tspan class="detail"> {a.detail}</tspan>
        </text>
      </g>,
    );
  }

  return (
    <div class="sequence">
      <div class="lane-heads" style={{ height: `${HEAD}px` }}>
        {DRAWN_LANES.map((lane) => (
          <div class="lane-head" key={lane} data-lane={lane} style={{ width: `${laneWidth}px` }} title={PARTY_NAMES[lane]}>
            {PARTY_NAMES[lane]}
          </div>
        ))}
      </div>
      <div
        class="sequence-scroll"
        ref={scroller}
        data-testid="sequence"
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          setScrollTop(el.scrollTop);
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW;
        }}
      >
        <svg class="sequence-svg" width={width} height={Math.max(shown * ROW, height)} role="img" aria-label={`${shown} arrows`}>
          <defs>
            {(['call', 'refused', 'failed'] as const).map((kind) => (
              <marker id={`head-${kind}`} key={kind} viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
                <path d="M 0 0 L 10 5 L 0 10 z" class={`head kind-${kind}`} />
              </marker>
            ))}
          </defs>
          {DRAWN_LANES.map((lane) => (
            <line class="lifeline" key={lane} x1={x(lane)} x2={x(lane)} y1={0} y2={Math.max(shown * ROW, height)} />
          ))}
          {rows}
        </svg>
      </div>
    </div>
  );
}
