/**
 * Where a run's management code executes (S8.3). Two implementations share one contract
 * suite: `docker` (real containers with no network, the default whenever an engine answers)
 * and `process` (the same management code as a local child process, for machines without
 * Docker and fast tests). Both reach the platform only through the control-plane socket.
 */
export type NodeDisks = {
  /** The node's OS disk: encrypted with a platform key (S4.6). */
  osDisk: string;
  /** The node's local temporary disk: NOT encrypted, may hold training data (S4.6). */
  tempDisk: string;
};

export type RunLaunch = {
  session: string;
  runId: string;
  workspace: string;
  /** Image from `prepareImage` (ignored by the process driver). */
  image: string;
  node: { name: string; disks: NodeDisks };
  /** Host directory holding the management code and the run module (the file share, S8.3 step 2). */
  agentDir: string;
  /** Host directory of the control-plane socket. */
  controlDir: string;
  /** File name of the socket inside controlDir. */
  socketName: string;
  env: Record<string, string>;
  memoryBytes: number;
  nanoCpus: number;
};

export type RunningCompute = {
  /** Container id or process id. */
  id: string;
  wait(): Promise<{ exitCode: number; oomKilled: boolean }>;
  /** Stop it now (cancel, killContainer fault). */
  kill(): Promise<void>;
  /** Free what it used (container, process). */
  remove(): Promise<void>;
};

export type ComputeDriver = {
  readonly kind: 'docker' | 'process';
  /** S8.3 managed step 1: an image with the run's dependencies, content-addressed; reused when identical. */
  prepareImage(options: { session: string; dependencies: string[] }): Promise<{ image: string; reused: boolean }>;
  provisionNode(options: { session: string; workspace: string; compute: string; node: string }): Promise<NodeDisks>;
  deprovisionNode(disks: NodeDisks): Promise<void>;
  /** Does the node's disk still exist? (tests and invariants: scale-down deletes the OS disk, S4.6) */
  diskExists(disk: string): Promise<boolean>;
  startRun(launch: RunLaunch): Promise<RunningCompute>;
  /** What of this session is still there (containers or processes, disks): empty after cleanup. */
  leftovers(session: string): Promise<string[]>;
  /** Remove everything of this session (containers, volumes, layered images). */
  cleanup(session: string): Promise<void>;
  close(): Promise<void>;
};
