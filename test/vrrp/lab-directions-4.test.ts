/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 6, 7. */
import { directionCases } from './direction-cases.js';

directionCases('kd4', [6, 7]);
