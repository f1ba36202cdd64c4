/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 10, 11. */
import { directionCases } from './direction-cases.js';

directionCases('kd6', [10, 11]);
