import { describe, expect, it } from 'vitest';
import { REQUIREMENTS, SECTIONS, requirement } from './catalog';

/**
 * The catalog is where the ids S1.1 … S8.5 are defined, so its own shape is checked here:
 * well-formed ids, numbered without gaps in section order, every entry with a title and a text.
 * That every id the repository cites is listed is checked in test/requirements.test.ts.
 */
const ids = Object.keys(REQUIREMENTS);
const parts = (id: string): [number, number] => {
  const [section, item] = id.slice(1).split('.').map(Number);
  return [section!, item!];
};

describe('requirement catalog', () => {
  it('spans S1.1 … S8.5', () => {
    expect(ids[0]).toBe('S1.1');
    expect(ids.at(-1)).toBe('S8.5');
  });

  it('has well-formed ids, each keyed by its own id, in a section that exists', () => {
    const wrong = Object.entries(REQUIREMENTS).flatMap(([key, r]) => [
      ...(/^S[1-9]\.[1-9]$/.test(key) ? [] : [`${key}: not of the form S<section>.<item>`]),
      ...(r.id === key ? [] : [`${key}: entry has id ${r.id}`]),
      ...(r.section === key.slice(0, key.indexOf('.')) ? [] : [`${key}: section ${r.section} is not its id's prefix`]),
      ...(Object.hasOwn(SECTIONS, r.section) ? [] : [`${key}: section ${r.section} is not in SECTIONS`]),
    ]);
    expect(wrong).toEqual([]);
  });

  it('lists its ids in order, each section numbered 1, 2, … without gaps', () => {
    const wrong: string[] = [];
    ids.forEach((id, i) => {
      const [section, item] = parts(id);
      const [prevSection, prevItem] = i === 0 ? [0, 0] : parts(ids[i - 1]!);
      const expected = section === prevSection ? `S${section}.${prevItem + 1}` : `S${prevSection + 1}.1`;
      if (id !== expected) wrong.push(`${id} follows ${ids[i - 1] ?? 'nothing'} (expected ${expected})`);
    });
    expect(wrong).toEqual([]);
  });

  it('has sections S1 … S8 in order, each with a title and at least one requirement', () => {
    const sections = Object.values(SECTIONS);
    expect(sections.map((s) => s.id)).toEqual(sections.map((_, i) => `S${i + 1}`));
    expect(Object.keys(SECTIONS)).toEqual(sections.map((s) => s.id));
    for (const s of sections) {
      expect(s.title.trim(), `${s.id} has no title`).not.toBe('');
      expect(ids.some((id) => REQUIREMENTS[id]!.section === s.id), `${s.id} has no requirement`).toBe(true);
    }
  });

  it('gives every requirement a short title and a text of whole sentences', () => {
    const wrong = Object.values(REQUIREMENTS).flatMap((r) => [
      ...(r.title.trim() === '' ? [`${r.id}: empty title`] : []),
      ...(r.title.length > 60 ? [`${r.id}: title longer than 60 characters`] : []),
      ...(r.text.trim() === '' ? [`${r.id}: empty text`] : []),
      ...(/^[A-Z`]/.test(r.text) && /[.)]$/.test(r.text) ? [] : [`${r.id}: text is not a sentence (capital first, full stop last)`]),
    ]);
    expect(wrong).toEqual([]);
  });

  it('cites, inside its texts, only ids it defines', () => {
    const wrong = Object.values(REQUIREMENTS).flatMap((r) =>
      [...r.text.matchAll(/\bS\d+\.\d+\b/g)].map((m) => m[0]).filter((id) => !Object.hasOwn(REQUIREMENTS, id)).map((id) => `${r.id} cites ${id}`),
    );
    expect(wrong).toEqual([]);
  });

  it('looks up ids, and nothing else', () => {
    expect(requirement('S7.2')).toBe(REQUIREMENTS['S7.2']);
    expect(requirement('S7.2')?.section).toBe('S7');
    expect(requirement('S9.1')).toBeUndefined();
    expect(requirement('constructor')).toBeUndefined();
    expect(requirement('s7.2')).toBeUndefined();
  });
});
