/** Human output of diagnostics, as compilers print them: FILE:LINE:COL: error|warning: message [CODE]. */
import type { Diagnostic } from './model.js';

export const formatDiagnostic = (d: Diagnostic): string =>
  `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message} [${d.code}]`;
