import { ConfigError } from "../errors.js";

// A key is echoed only when it reads as an option name: shorter than a secret (32 characters) and
// an identifier. A secret spread in as a key (`{ [process.env.SECRET]: true }`) is then never printed.
const ECHOABLE_KEY = /^[A-Za-z_$][\w$-]{0,30}$/;

/** Throws a ConfigError naming the first key of `input` not in `known`, with a did-you-mean. */
export function rejectUnknown(input: object, known: readonly string[], kind: string): void {
  for (const key of Object.keys(input)) {
    if (known.includes(key)) continue;
    if (!ECHOABLE_KEY.test(key)) {
      throw new ConfigError(
        `unknown ${kind}: a key of ${key.length} characters that is no option name (it is not repeated here, in case it is a secret); known: ${known.join(", ")}`,
      );
    }
    const lower = key.toLowerCase();
    // A near spelling, or a known name inside the unknown one ("tableName", "cookieName").
    const guess =
      known.find((k) => k.toLowerCase() === lower || editDistance(k, key) <= 2) ??
      known.find((k) => k.length >= 4 && lower.includes(k.toLowerCase()));
    throw new ConfigError(
      `unknown ${kind} "${key}"${guess ? `; did you mean "${guess}"?` : `; known: ${known.join(", ")}`}`,
    );
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(
        current + 1,
        (row[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = current;
    }
  }
  return row[b.length] as number;
}
