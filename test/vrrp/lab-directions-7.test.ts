/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 12, 13. */
import { directionCases } from './direction-cases.js';

directionCases('kd7', [12, 13]);
