/** TCP_CHECK: success = TCP connect (check_tcp.c). */
import { table } from '../engine.js';
import { type CheckerSpec, connectionEntries } from './common.js';

export const TCP_CHECK: CheckerSpec = { table: table(connectionEntries()), finish: () => ({}) };
