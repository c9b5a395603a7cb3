import { SimError } from '@amlsim/core';

/**
 * An ARM error response: `{ error: { code, message } }` with the HTTP status ARM gives, and
 * the codes the scenario runner uses (AuthorizationFailed, ExpiredAuthenticationToken,
 * Conflict, ResourceNotFound, …) since both come from the same error catalog.
 */
export class ArmHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What an ARM caller gets for an error: a SimError keeps its code and status; anything else is a 500 InternalServerError. */
export const armErrorBody = (e: unknown, redact: (s: string) => string): { status: number; body: { error: { code: string; message: string } } } => {
  if (e instanceof ArmHttpError) return { status: e.status, body: { error: { code: e.code, message: redact(e.message) } } };
  if (e instanceof SimError) return { status: e.status, body: { error: { code: e.code, message: redact(e.message) } } };
  return { status: 500, body: { error: { code: 'InternalServerError', message: 'The simulator failed to handle this request (a bug; its log says more).' } } };
};

export const badRequest = (code: string, message: string) => new ArmHttpError(400, code, message);
export const notFound = (message: string) => new ArmHttpError(404, 'ResourceNotFound', message);
