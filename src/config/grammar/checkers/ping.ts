/** PING_CHECK: ICMP echo (check_ping.c). */
import { table } from '../engine.js';
import { type CheckerSpec, connectionEntries } from './common.js';

export const PING_CHECK: CheckerSpec = { table: table(connectionEntries()), finish: () => ({}) };
