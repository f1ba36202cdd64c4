/** Scheduler registry: adding one is one file plus one line here. */
import { createDh } from './dh.js';
import { createLblc, createLblcr } from './lblc.js';
import { createFo, createLc, createNq, createOvf, createSed, createTwos, createWlc } from './least.js';
import { createMh } from './mh.js';
import { createRr } from './rr.js';
import type { SchedulerFactory } from './scheduler.js';
import { createSh } from './sh.js';
import { createWrr } from './wrr.js';

export const SCHEDULERS: Readonly<Record<string, SchedulerFactory>> = {
  rr: createRr,
  wrr: createWrr,
  lc: createLc,
  wlc: createWlc,
  sed: createSed,
  nq: createNq,
  fo: createFo,
  ovf: createOvf,
  dh: createDh,
  sh: createSh,
  lblc: createLblc,
  lblcr: createLblcr,
  mh: createMh,
  twos: (o) => createTwos(o.random),
};

export type { SchedDest, Scheduler } from './scheduler.js';
