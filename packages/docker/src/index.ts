export * from './labels';
export * from './errors';
export type { ImageFile } from './image-files';
export { renderDockerfile, type DockerfileSpec } from './build-context';
export { collectNodeRuntimeFiles, RUNTIME_USER, type NodeRuntimeSources } from './node-runtime';
export { demuxLogFrames, type ContainerLogs } from './log-frames';
export type { BindMount, VolumeMount, RunContainerOptions, ContainerExit, ContainerHandle } from './containers';
export type { VolumeHandle } from './volumes';
export { isProcessAlive, sessionJudge, type SweepOptions, type SweepResult, type SweptCounts, type SweepReason } from './sweep';
export * from './lease';
export { LABEL_VNET, VNET_HOLDER_ROLE } from './vnet';
export { LABEL_CONTENT, type BuildImageOptions, type LayeredImageOptions, type ImageResult } from './images';
export {
  parseRegistryReference,
  type RegistryCredentials,
  type PushImageOptions,
  type PushResult,
  type PullImageOptions,
  type PullResult,
} from './registry';
export { connectDocker, DockerEngine, DEFAULT_DOCKER_SOCKET, type ConnectDockerOptions } from './docker-engine';
