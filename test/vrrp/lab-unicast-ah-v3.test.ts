/** keepalived 2.2.7 interop, second half of direction-cases.ts: VRRPv2 AH and VRRPv3 over unicast peers. */
import { AH, directionCases } from './direction-cases.js';

directionCases('kvq', [
  ['v2 AH unicast', 2, 'v4', AH, true],
  ['v2 AH unicast', 2, 'v4', AH, false],
  ['v3 IPv4 unicast', 3, 'v4', '', false],
  ['v3 IPv6 unicast (global)', 3, 'v6', '', false],
  ['v3 IPv6 unicast (link-local)', 3, 'll', '', true],
]);
