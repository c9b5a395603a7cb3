import { useMemo } from 'preact/hooks';
import type { ViewProps } from '../app';
import { activityRows } from '../activity-rows';
import { Cites } from './cites';
import './panels.css';

/**
 * The Azure activity log as the simulator keeps it (packages/core/src/projections/activity-log.ts):
 * operation, initiator, time and status of each ARM write, refused ones Failed. Where a training
 * run was started or a model registered, a dashed marker says so and that the activity log has no
 * entry for it: the seed's documented gap (S7.2). Rows are derived by packages/web/src/activity-rows.ts.
 */
export function ActivityView({ moment, select }: ViewProps) {
  const rows = useMemo(() => activityRows(moment.events, moment.count), [moment.events, moment.count]);
  const entries = rows.filter((r) => r.kind === 'entry').length;
  const gaps = rows.length - entries;
  return (
    <div class="panel activity" data-testid="activity">
      <h3>
        Activity log <Cites ids={['S7.2']} />
      </h3>
      <p class="legend">
        {entries} entr{entries === 1 ? 'y' : 'ies'} (control-plane writes: operation, initiator, time, status)
        {gaps > 0 && ` · ${gaps} action${gaps === 1 ? '' : 's'} not logged, marked with a dashed box`}
      </p>
      {rows.length === 0 && <p class="muted">Nothing in the activity log yet at this point of the session.</p>}
      <div class="activity-list">
        {rows.map((r, i) =>
          r.kind === 'entry' ? (
            <button type="button" class="activity-row" key={i} data-entry="" data-status={r.entry.status} onClick={() => select({ position: r.position })} title={`log position ${r.position}`}>
              <span class="when">{r.entry.at.slice(11, 23)}</span>
              <span class="op">{breakable(r.entry.operation)}</span>
              <span class={`status ${r.entry.status}`}>{r.entry.status}</span>
              <span class="who">
                by {r.entry.initiator} · {r.entry.scope ? breakable(r.entry.scope) : '—'}
              </span>
            </button>
          ) : (
            // A div, not a button: it holds a requirement link, and a link may not sit inside a button.
            <div
              role="button"
              tabIndex={0}
              class="activity-row gap"
              key={i}
              data-gap="S7.2"
              data-gap-type={r.type}
              onClick={(e) => {
                if (!(e.target instanceof HTMLAnchorElement)) select({ position: r.position });
              }}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') select({ position: r.position });
              }}
              title={`${r.type} at log position ${r.position}`}
            >
              <span class="when">{r.at.slice(11, 23)}</span>
              <span class="op">Not in the activity log: {r.what}</span>
              <span class="status">gap</span>
              <span class="who">
                by {r.initiator} in {r.scope} · S7.2: starting a run and registering a model are not logged there <Cites ids={['S7.2']} />
              </span>
            </div>
          ),
        )}
      </div>
    </div>
  );
}

/** An operation name or scope, allowed to wrap after each slash rather than mid-word. */
const breakable = (path: string) =>
  path.split('/').map((part, i, all) => (
    <>
      {part}
      {i < all.length - 1 && (
        <>
          /<wbr />
        </>
      )}
    </>
  ));
