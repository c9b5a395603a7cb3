import { requirement } from '@amlsim/core';

/**
 * The requirement ids an element shows, each a link whose title is the requirement's text
 * (packages/core/src/requirements/catalog.ts); clicking one opens it in the requirements panel.
 */
export function Cites({ ids }: { ids: readonly string[] }) {
  return (
    <span class="cites">
      {ids.map((id) => {
        const r = requirement(id);
        return (
          <a class="cite" key={id} href={`#req-${id}`} title={r ? `${id} ${r.title}: ${r.text}` : `${id} (unknown requirement)`} data-cite={id}>
            {id}
          </a>
        );
      })}
    </span>
  );
}

/** The requirement ids a text names (S1.1 … S8.5), each once, in order of appearance. */
export const citedIn = (text: string): string[] => [...new Set(text.match(/\bS[1-8]\.\d+\b/g) ?? [])];

/** The requirements themselves, id, title and text: what presenter mode puts beside a step. */
export function RequirementTexts({ ids }: { ids: readonly string[] }) {
  if (ids.length === 0) return null;
  return (
    <ul class="requirement-texts" data-testid="requirement-texts">
      {ids.map((id) => {
        const r = requirement(id);
        return (
          <li key={id} data-cite={id}>
            <b>{id}</b> {r ? <><b>{r.title}.</b> {r.text}</> : <span class="muted">(no such requirement)</span>}
          </li>
        );
      })}
    </ul>
  );
}
