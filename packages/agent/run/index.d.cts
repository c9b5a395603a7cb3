// Types of @amlsim/run for editors and the host's TypeScript tests (not needed at run time).

export type Scalar = number | string | boolean;

export declare const MAX_NAME_LENGTH: 255;

export declare class Run {
  constructor(options?: { id?: string; experiment?: string; metricsFile?: string });
  /** The run the current process belongs to (SDK v1: Run.get_context()). */
  static getContext(): Run;
  /** AZUREML_RUN_ID, or `OfflineRun_<uuid>` outside amlsim. */
  readonly id: string;
  /** AZUREML_ARM_PROJECT_NAME. */
  readonly experiment: string;
  /** True when metrics are only printed to stdout (no AMLSIM_METRICS_FILE). */
  readonly offline: boolean;
  log(name: string, value: Scalar): void;
  logList(name: string, values: Scalar[]): void;
  logRow(name: string, row: Record<string, Scalar>): void;
  tag(key: string, value?: Scalar): void;
}
