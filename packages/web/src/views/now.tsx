import { EVENT_CATALOG, PARTY_NAMES, arrowOf, drawnEvents, isKnownEventType } from '@amlsim/core';
import type { Moment } from '../timeline';
import { RequirementTexts } from './cites';

/**
 * Presenter mode's caption: the last thing that happened at the shown point, in words a room can
 * read — who acted on whom, what the catalog says it means, and the requirement it shows.
 */
export function NowCaption({ moment }: { moment: Moment }) {
  const last = drawnEvents(moment.events.slice(Math.max(0, moment.count - 20), moment.count)).at(-1);
  if (!last) return null;
  const { from, to } = arrowOf(last.type);
  const doc = isKnownEventType(last.type) ? EVENT_CATALOG[last.type as keyof typeof EVENT_CATALOG] : undefined;
  return (
    <div class="now-caption" data-testid="now-caption">
      <div class="now-line">
        <span class="now-parties">
          {PARTY_NAMES[from]} → {PARTY_NAMES[to]}
        </span>{' '}
        <b>{last.type}</b>
        {doc ? <span class="now-doc"> — {doc.doc}</span> : null}
      </div>
      {doc && <RequirementTexts ids={doc.cites} />}
    </div>
  );
}
