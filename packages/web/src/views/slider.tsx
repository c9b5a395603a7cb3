import type { Moment } from '../timeline';

/**
 * Time travel over the shown session: one notch per event. Moving it rebuilds every view from the
 * events before the notch alone (packages/web/src/timeline.ts); "Live" follows the log again.
 */
export function TimeSlider({ moment, onChange }: { moment: Moment; onChange: (count: number | undefined) => void }) {
  const total = moment.events.length;
  const last = moment.count > 0 ? moment.events[moment.count - 1] : undefined;
  return (
    <div class={`slider ${moment.live ? 'is-live' : 'is-past'}`}>
      <label>
        <span class="slider-label">time</span>
        <input
          type="range"
          min={0}
          max={total}
          step={1}
          value={moment.count}
          aria-label="Position in the session"
          data-testid="time-slider"
          onInput={(e) => {
            const n = Number((e.target as HTMLInputElement).value);
            onChange(n >= total && moment.live ? undefined : n);
          }}
        />
      </label>
      <span class="slider-position" data-testid="slider-position">
        event {moment.count} of {total}
        {last ? ` · log position ${last.position} · ${last.meta.at.slice(11, 23)}` : ''}
      </span>
      <button type="button" class={moment.live ? 'live-on' : ''} aria-pressed={moment.live} onClick={() => onChange(undefined)} title="Follow the log as it grows">
        {moment.live ? '● Live' : 'Go live'}
      </button>
    </div>
  );
}
