/**
 * FILE_CHECK (keepalived track_file used by a real server): the file holds an integer. With
 * weight 0 a non-zero value is a failure; otherwise value x weight (reversed with `reverse`)
 * becomes the dynamic weight when `dynamic`, and a negative result is a failure.
 */
import type { Config, FileCheck } from '../config/model.js';
import type { CheckIo, CheckResult, CheckTarget, HealthChecker } from './types.js';

export function createFileCheck(config: FileCheck, io: CheckIo, model?: Config): HealthChecker {
  const tf = model?.trackFiles.find((t) => t.name === config.trackFile);
  return {
    type: 'FILE_CHECK',
    async run(target: CheckTarget): Promise<CheckResult> {
      if (!tf) return { ok: false, reason: `FILE_CHECK: track_file ${config.trackFile} is not defined` };
      let text: string;
      try {
        text = await io.readFile(tf.file);
      } catch (e) {
        return { ok: false, reason: `FILE_CHECK: cannot read ${tf.file} (${(e as NodeJS.ErrnoException).code ?? e})` };
      }
      const value = Number.parseInt(text.trim() || '0', 10);
      if (!Number.isFinite(value)) return { ok: false, reason: `FILE_CHECK: ${tf.file} does not hold a number` };
      const w = config.weight;
      if (w === 0)
        return value === 0 ? { ok: true, reason: `${tf.file} is 0` } : { ok: false, reason: `${tf.file} is ${value}` };
      const delta = (config.weightReverse ? -1 : 1) * value * w;
      const weight = config.dynamic ? target.weight + delta : target.weight;
      if (weight < 0) return { ok: false, reason: `FILE_CHECK ${tf.file}: weight ${weight} < 0` };
      return { ok: true, weight: Math.min(65535, weight), reason: `FILE_CHECK ${tf.file}: value ${value}` };
    },
  };
}
