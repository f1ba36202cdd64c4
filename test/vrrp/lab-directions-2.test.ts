/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 2, 3. */
import { directionCases } from './direction-cases.js';

directionCases('kd2', [2, 3]);
