import type { ViewProps } from '../app';

/** Placeholder: being built. */
export function Statecharts(_props: ViewProps) {
  return <p class="muted">Not built yet.</p>;
}
