import { setup } from 'xstate';
import type { StoredEvent } from '../events/envelope';
import { handledEvents, statusTransitions } from '../aggregate/status-machine';

/**
 * The lifecycle of a web service (S8.5), as the platform's service states: Transitioning while
 * its replicas start, then Healthy, Failed (a replica did not come up) or Unschedulable (the
 * AKS cluster has no room); a Healthy service whose replica goes down is Unhealthy. Any of them
 * can be deleted. Keys change only on a service that was deployed.
 *
 * Pure: the webservices read model folds service facts through it, and a fact the service's
 * state does not allow (a replica going down on a service that never came up) is a bug the fold
 * reports; the platform asks it before recording one.
 */
export type WebserviceEvent =
  | { type: 'ServiceKeysGenerated' }
  | { type: 'WebserviceHealthy' }
  | { type: 'WebserviceRestored' }
  | { type: 'WebserviceFailed' }
  | { type: 'WebserviceUnschedulable' }
  | { type: 'WebserviceUnhealthy' }
  | { type: 'ServiceKeyRegenerated' }
  | { type: 'WebserviceDeleted' };

export type WebserviceStatus = 'Transitioning' | 'Healthy' | 'Unhealthy' | 'Failed' | 'Unschedulable' | 'Deleted';

export const webserviceMachine = setup({ types: { events: {} as WebserviceEvent } }).createMachine({
  id: 'webservice',
  initial: 'Transitioning',
  // (A transition with neither target nor actions is not one for `can()`: facts that keep the
  // state name it as their target.)
  states: {
    Transitioning: {
      on: {
        ServiceKeysGenerated: 'Transitioning',
        WebserviceHealthy: 'Healthy',
        WebserviceFailed: 'Failed',
        WebserviceUnschedulable: 'Unschedulable',
        WebserviceDeleted: 'Deleted',
      },
    },
    // Restored: its replicas outlived the simulator and a resumed session serves them again.
    Healthy: { on: { WebserviceUnhealthy: 'Unhealthy', ServiceKeyRegenerated: 'Healthy', WebserviceRestored: 'Healthy', WebserviceDeleted: 'Deleted' } },
    // Another replica may go down too; the replicas left still serve, so keys still change.
    Unhealthy: { on: { WebserviceUnhealthy: 'Unhealthy', ServiceKeyRegenerated: 'Unhealthy', WebserviceDeleted: 'Deleted' } },
    Failed: { on: { WebserviceDeleted: 'Deleted' } },
    Unschedulable: { on: { WebserviceDeleted: 'Deleted' } },
    Deleted: { type: 'final' },
  },
});

/** The service's next status for a fact, or undefined when its status does not allow the fact. */
export const nextWebserviceStatus: (status: WebserviceStatus, event: WebserviceEvent) => WebserviceStatus | undefined = statusTransitions<WebserviceStatus, WebserviceEvent>(
  webserviceMachine,
);

const SERVICE_FACTS = handledEvents(webserviceMachine);

/**
 * Re-check a web service's recorded stream against the statechart of today (`amlsim replay`):
 * each deployment (WebserviceDeploymentRequested) starts it Transitioning, and the first
 * lifecycle fact the statechart would not take where the log has it is returned with the
 * status it met, or undefined when it takes every one.
 */
export const webserviceDivergence = (events: readonly StoredEvent[]): { event: StoredEvent; state: WebserviceStatus | undefined } | undefined => {
  let status: WebserviceStatus | undefined;
  for (const e of events) {
    if (e.type === 'WebserviceDeploymentRequested') {
      status = 'Transitioning';
      continue;
    }
    if (!SERVICE_FACTS.has(e.type)) continue;
    const next = status && nextWebserviceStatus(status, { type: e.type } as WebserviceEvent);
    if (!next) return { event: e, state: status };
    status = next;
  }
  return undefined;
};
