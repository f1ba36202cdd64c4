/** keepalived 2.2.7 interop, first half of direction-cases.ts: VRRPv2 without authentication and with PASS. */
import { directionCases, PASS } from './direction-cases.js';

directionCases('kvn', [
  ['v2 multicast without authentication', 2, 'mc', '', true],
  ['v2 multicast without authentication', 2, 'mc', '', false],
  ['v2 unicast without authentication', 2, 'v4', '', false],
  ['v2 PASS unicast', 2, 'v4', PASS, true],
  ['v2 PASS unicast', 2, 'v4', PASS, false],
]);
