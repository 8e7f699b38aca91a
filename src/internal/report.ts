/**
 * A user hook (onEvent, onInvalid) threw. The request must not fail for it (bad input never becomes a
 * 500), but the bug must not vanish either: hand it to the runtime's error reporter.
 */
export function reportHookError(hook: string, err: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  const wrapped = new Error(`sessionkit: the ${hook} hook threw; fix the hook`, { cause: err });
  if (typeof report === "function") report(wrapped);
  else console.error(wrapped);
}
