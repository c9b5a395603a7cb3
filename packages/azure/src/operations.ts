import { randomUUID } from 'node:crypto';
import { armErrorBody } from './http-errors';

type Operation = { id: string; startTime: string; endTime?: string; status: 'InProgress' | 'Succeeded' | 'Failed'; error?: { code: string; message: string } };

/**
 * ARM's long-running operations (the Azure-AsyncOperation pattern): a PUT that the platform
 * carries out over time answers 201/202 at once with the operation's status URL, which a
 * client polls (InProgress -> Succeeded | Failed with the error), then GETs the resource, whose
 * `provisioningState` the log's read models give. The operation record is the HTTP answer's
 * bookkeeping only: what happened is in the log (the workspace's own events).
 */
export class Operations {
  private readonly ops = new Map<string, Operation>();

  constructor(
    private readonly now: () => number,
    private readonly redact: (s: string) => string,
  ) {}

  /** Track a piece of work; its outcome becomes the operation's status. */
  track(work: Promise<unknown>): string {
    const id = randomUUID();
    const op: Operation = { id, startTime: new Date(this.now()).toISOString(), status: 'InProgress' };
    this.ops.set(id, op);
    work.then(
      () => {
        op.status = 'Succeeded';
        op.endTime = new Date(this.now()).toISOString();
      },
      (e: unknown) => {
        op.status = 'Failed';
        op.endTime = new Date(this.now()).toISOString();
        op.error = armErrorBody(e, this.redact).body.error;
      },
    );
    return id;
  }

  get(id: string): Operation | undefined {
    return this.ops.get(id);
  }
}

/**
 * Waits until `work` settles or `visible()` holds (checked every few ms): a PUT answers as soon
 * as the platform has accepted the work (its first fact is in the log) and refuses at once what
 * the platform refused (authorization, validation), with that error.
 */
export const acceptedOrRefused = async (work: Promise<unknown>, visible: () => boolean): Promise<void> => {
  let settled = false;
  const done = work.then(
    () => void (settled = true),
    (e: unknown) => {
      settled = true;
      throw e;
    },
  );
  done.catch(() => {});
  while (!settled && !visible()) await new Promise((r) => setTimeout(r, 5));
  if (settled) await done;
};
