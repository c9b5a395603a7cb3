/**
 * One error type for the whole simulator (docs/architecture.md "Errors").
 *
 * `code` mirrors the platform's where it has one (AuthorizationFailed, ResourceNotFound, …),
 * so a scenario can `expect: { error: <code> }` exactly as a user would see it from the cloud.
 * Always built through the `errors` factory, never ad hoc.
 */
export class SimError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  /** HTTP status the platform would answer with. */
  readonly status: number;
  /** Structured facts about the failure (no secret values). */
  readonly details: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    options: { status?: number; retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SimError';
    this.code = code;
    this.status = options.status ?? 400;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  toJSON(): { code: string; message: string; status: number; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, status: this.status, details: this.details };
  }
}

export const isSimError = (value: unknown): value is SimError => value instanceof SimError;
