import { ArmHttpError } from './http-errors';

/**
 * The api-versions each resource provider answers, newest first: the versions whose request
 * and response shapes (for the operations docs/azure.md lists) the simulator follows. The
 * official SDKs send these: @azure/arm-machinelearning 2.1.1 and Debian's
 * azure-mgmt-machinelearningservices 2022-10-01; @azure/arm-authorization 9 and
 * azure-mgmt-authorization 2022-04-01; @azure/arm-storage 21 2026-09-01, azure-mgmt-storage 2022-09-01.
 */
export const API_VERSIONS = {
  'Microsoft.MachineLearningServices': ['2023-04-01', '2022-10-01', '2022-05-01'],
  'Microsoft.Authorization': ['2022-04-01', '2020-10-01', '2018-01-01-preview', '2015-07-01'],
  'Microsoft.Storage': ['2026-09-01', '2025-06-01', '2025-01-01', '2023-05-01', '2023-01-01', '2022-09-01', '2021-09-01'],
} as const;

export type Provider = keyof typeof API_VERSIONS;

const WELL_FORMED = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

/**
 * Checks `?api-version=` as ARM does: missing -> 400 MissingApiVersionParameter; not a
 * version -> 400 InvalidApiVersionParameter; a version the provider does not answer -> 400
 * NoRegisteredProviderFound, each listing the supported versions.
 */
export const checkApiVersion = (provider: Provider, type: string, given: string | undefined): string => {
  const supported = API_VERSIONS[provider] as readonly string[];
  const list = supported.map((v) => `'${v}'`).join(', ');
  if (given === undefined || given === '') {
    throw new ArmHttpError(400, 'MissingApiVersionParameter', `The api-version query parameter (?api-version=) is required for all requests. The supported api-versions for type '${type}' are ${list}.`);
  }
  if (!WELL_FORMED.test(given)) {
    throw new ArmHttpError(400, 'InvalidApiVersionParameter', `The api-version '${given}' is invalid. The supported versions are ${list}.`);
  }
  if (!supported.includes(given)) {
    throw new ArmHttpError(
      400,
      'NoRegisteredProviderFound',
      `No registered resource provider found for location 'global' and API version '${given}' for type '${type}'. The supported api-versions are ${list}.`,
    );
  }
  return given;
};
