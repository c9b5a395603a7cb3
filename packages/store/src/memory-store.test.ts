import { createMemoryEventStore } from './memory-store';
import { describeEventStoreContract } from './event-store.contract';

describeEventStoreContract('memory', () => createMemoryEventStore());
