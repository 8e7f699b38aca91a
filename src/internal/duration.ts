const UNIT_MS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
});

const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/y;

/**
 * Parses a duration into milliseconds: a number of seconds, or a string of one or more
 * `<number><unit>` parts with units ms, s, m, h, d, w ("30m", "1h30m", "7d").
 * Returns `undefined` for anything else; never throws (the caller words the error).
 */
export function parseDurationMs(input: unknown): number | undefined {
  if (typeof input === "number") {
    // Checked after scaling: a huge finite number of seconds overflows to Infinity ms.
    const ms = Math.round(input * 1000);
    return Number.isFinite(ms) && input >= 0 ? ms : undefined;
  }
  if (typeof input !== "string") return undefined;
  const text = input.trim();
  if (text === "" || text.length > 64) return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (!match || match.index !== start) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    while (text[PART.lastIndex] === " ") PART.lastIndex++;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}
