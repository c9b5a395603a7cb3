/**
 * S3.1: Azure's rule for a virtual network's name — 2 to 64 characters: letters, digits, '_',
 * '.' and '-', beginning with a letter or digit and ending with a letter, digit or '_'.
 */
const VNET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$/;

/** What is wrong with a VNet name, or `undefined` when Azure would take it. */
export const vnetNameProblem = (name: string): string | undefined => {
  if (name.length < 2) return 'it is shorter than 2 characters';
  if (name.length > 64) return `it is ${name.length} characters long (at most 64)`;
  if (!/^[A-Za-z0-9]/.test(name)) return 'it must begin with a letter or digit';
  if (!/[A-Za-z0-9_]$/.test(name)) return "it must end with a letter, digit or '_'";
  if (!VNET_NAME.test(name)) return `it holds '${[...name].find((c) => !/[A-Za-z0-9_.-]/.test(c))}', which is not a letter, digit, '_', '.' or '-'`;
  return undefined;
};
