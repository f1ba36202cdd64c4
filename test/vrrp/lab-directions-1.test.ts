/** keepalived 2.2.7 interop, both directions, whole sequence: direction-cases.ts variants 0, 1. */
import { directionCases } from './direction-cases.js';

directionCases('kd1', [0, 1]);
