/**
 * The requirements amlsim implements, by id (S1.1 … S8.5), each with a short title and its text
 * restated in English. Event docs, scenarios and the dashboard cite these ids.
 */
export type Requirement = { id: string; section: string; title: string; text: string };

export const REQUIREMENTS: Readonly<Record<string, Requirement>> = {};

/** The requirement of an id, or undefined for an id that names none. */
export const requirement = (id: string): Requirement | undefined => REQUIREMENTS[id];
