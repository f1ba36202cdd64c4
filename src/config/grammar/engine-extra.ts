/** Re-exports used by LVS grammars plus a choice suggestion helper. */
import { didYouMean } from '../diagnostics.js';

export * from './engine.js';

export const didYouMeanChoice = (word: string, choices: readonly string[]): string =>
  choices.includes(word) ? `; did you mean '${word}'?` : didYouMean(word, choices);
