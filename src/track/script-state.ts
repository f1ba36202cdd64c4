/**
 * vrrp_script rise/fall counter, as vrrp_scheduler.c keeps it: `result` runs 0..rise+fall-1 and
 * the script is OK while result >= rise. A fresh script starts at rise-1 ("unknown": its first
 * result decides either way); `init_fail` starts it at 0 (failed, needs `rise` successes).
 */
export interface ScriptState {
  readonly result: number;
  /** no run has completed yet */
  readonly initial: boolean;
}

export function initialScriptState(rise: number, initFail: boolean): ScriptState {
  return { result: initFail ? 0 : rise - 1, initial: !initFail };
}

/** OK, failed, or not known yet (never run, not init_fail). */
export function scriptUp(state: ScriptState, rise: number): boolean | undefined {
  if (state.initial) return undefined;
  return state.result >= rise;
}

export function stepScript(state: ScriptState, success: boolean, rise: number, fall: number): ScriptState {
  const top = rise + fall - 1;
  let result = state.result;
  if (success) {
    if (result < rise - 1) result++;
    else result = top;
  } else if (result > rise) {
    result--;
  } else {
    result = 0;
  }
  return { result, initial: false };
}
