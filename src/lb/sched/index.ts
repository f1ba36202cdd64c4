/** Scheduler registry: name -> factory. Adding a scheduler = one file + one line here. */
import { createDestinationHashing } from './dh.js';
import { createWeightedFailover } from './fo.js';
import { createLocalityLeastConnection } from './lblc.js';
import { createLocalityLeastConnectionReplicated } from './lblcr.js';
import { createLeastConnection } from './lc.js';
import { createMaglevHashing } from './mh.js';
import { createNeverQueue } from './nq.js';
import { createWeightedOverflow } from './ovf.js';
import { createRoundRobin } from './rr.js';
import { createShortestExpectedDelay } from './sed.js';
import { createSourceHashing } from './sh.js';
import { createTwoChoices } from './twos.js';
import type { SchedulerFactory } from './types.js';
import { createWeightedLeastConnection } from './wlc.js';
import { createWeightedRoundRobin } from './wrr.js';

export const SCHEDULERS: Readonly<Record<string, SchedulerFactory>> = Object.freeze({
  rr: createRoundRobin,
  wrr: createWeightedRoundRobin,
  lc: createLeastConnection,
  wlc: createWeightedLeastConnection,
  sed: createShortestExpectedDelay,
  nq: createNeverQueue,
  fo: createWeightedFailover,
  ovf: createWeightedOverflow,
  dh: createDestinationHashing,
  sh: createSourceHashing,
  lblc: createLocalityLeastConnection,
  lblcr: createLocalityLeastConnectionReplicated,
  mh: createMaglevHashing,
  twos: createTwoChoices,
});

export const DEFAULT_SCHEDULER = 'wlc';

/** Scheduler flags ipvsadm accepts (-b). */
export const SCHED_FLAGS: readonly string[] = [
  'flag-1',
  'flag-2',
  'flag-3',
  'sh-fallback',
  'sh-port',
  'mh-fallback',
  'mh-port',
];

export function schedulerNames(): string[] {
  return Object.keys(SCHEDULERS);
}

export type { DestChange, SchedClient, SchedContext, SchedDest, SchedService, Scheduler } from './types.js';
