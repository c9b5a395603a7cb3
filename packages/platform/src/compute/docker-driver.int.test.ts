import { describeComputeDriverContract } from './compute-driver.contract';
import { createDockerDriver } from './docker-driver';

describeComputeDriverContract('docker', () => createDockerDriver());
