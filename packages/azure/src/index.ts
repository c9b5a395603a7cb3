export { startAzureEndpoint, type AzureEndpoint, type AzureEndpointOptions } from './endpoint';
export { API_VERSIONS, checkApiVersion } from './api-versions';
export { BUILT_IN_ROLE_GUIDS } from './resource-ids';
