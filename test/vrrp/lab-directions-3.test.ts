/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 4, 5. */
import { directionCases } from './direction-cases.js';

directionCases('kd3', [4, 5]);
