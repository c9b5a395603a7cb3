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
