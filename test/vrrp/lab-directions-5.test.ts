/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 8, 9. */
import { directionCases } from './direction-cases.js';

directionCases('kd5', [8, 9]);
