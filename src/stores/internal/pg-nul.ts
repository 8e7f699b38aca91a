/**
 * PostgreSQL cannot hold U+0000: `jsonb` refuses the `\u0000` escape and `text` the byte. Every
 * other store (and a cookie) keeps such a string, and a form field can carry one (`%00`), so the
 * PostgreSQL store writes NUL as MARK "0" and MARK itself as MARK MARK, in JSON text, data keys and
 * user ids alike, and reads them back the other way. MARK is U+FDD0, a noncharacter Unicode sets
 * aside for a program's internal use; a string holding neither character is written as it is.
 * Before this, such a value failed its write as an outage (error 22P05, a 503 from the adapters).
 */
const MARK = "\ufdd0";
// JSON.stringify writes NUL as \u0000 behind an even run of backslashes; an odd run means the text
// "\\u0000" was escaped, not a NUL.
const NUL_ESCAPE = /(?<!\\)((?:\\\\)*)\\u0000/g;
const MARKED = /\ufdd0([\ufdd00])/g;

/** JSON text as PostgreSQL can hold it. */
export function toPgJson(text: string): string {
  const marked = text.includes(MARK) ? text.replaceAll(MARK, MARK + MARK) : text;
  return marked.includes("\\u0000") ? marked.replace(NUL_ESCAPE, `$1${MARK}0`) : marked;
}

/** The JSON text `toPgJson` was given, from what PostgreSQL returns of it. */
export function fromPgJson(text: string): string {
  return text.includes(MARK)
    ? text.replace(MARKED, (_, next: string) => (next === "0" ? "\\u0000" : MARK))
    : text;
}

/** A string (a data key, a user id) as PostgreSQL can hold it, the same way as `toPgJson`. */
export function toPgText(value: string): string {
  const marked = value.includes(MARK) ? value.replaceAll(MARK, MARK + MARK) : value;
  return marked.includes("\0") ? marked.replaceAll("\0", `${MARK}0`) : marked;
}
