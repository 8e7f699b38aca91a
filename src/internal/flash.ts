import type { FlashField, SessionMeta } from "../stores/store.js";

/**
 * Flash messages live in the session's meta one field each, `flash:<id>` = `[level, message]`, so
 * that a store's per-field meta patch merges them: two requests of one session that each add a
 * message both keep theirs, and a request that reads (removes) the messages it saw leaves one
 * added meanwhile by another request. A single field holding all messages was written whole, and
 * the commit that reached the store last dropped the other's change.
 */
export const FLASH_PREFIX = "flash:";

/** Base-36 digits of each part of an id: a millisecond time (up to year 5188), a sequence, a nonce. */
const TIME_DIGITS = 9;
const SEQUENCE_DIGITS = 3;
const SEQUENCE_SPAN = 36 ** SEQUENCE_DIGITS;
const NONCE_DIGITS = 6;

let lastTime = 0;
let sequence = 0;

/**
 * A new message's field. Ids sort in the order messages were added: by the session clock, then by
 * this process's sequence (several messages in one millisecond); the random nonce keeps two
 * processes adding in the same millisecond apart, so neither overwrites the other's message. The
 * time part never goes back in one process (a clock stepped back, a sequence run out within one
 * millisecond), so a later message never sorts before an earlier one.
 */
export function newFlashField(now: number): FlashField {
  const time = Math.max(0, Math.floor(now), lastTime);
  if (time > lastTime) {
    lastTime = time;
    sequence = 0;
  } else if (++sequence === SEQUENCE_SPAN) {
    lastTime = time + 1;
    sequence = 0;
  }
  const nonce = globalThis.crypto.getRandomValues(new Uint32Array(1))[0] as number;
  const id =
    lastTime.toString(36).padStart(TIME_DIGITS, "0") +
    sequence.toString(36).padStart(SEQUENCE_DIGITS, "0") +
    (nonce % 36 ** NONCE_DIGITS).toString(36).padStart(NONCE_DIGITS, "0");
  return `${FLASH_PREFIX}${id}`;
}

export function isFlashField(field: string): field is FlashField {
  return field.startsWith(FLASH_PREFIX);
}

/** Whether a stored value is one message as `newFlashField`'s field holds it. */
export function isFlashMessage(value: unknown): value is [level: string, message: string] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === "string" &&
    typeof value[1] === "string"
  );
}

/** The meta's message fields, oldest first. */
export function flashFieldsOf(meta: SessionMeta): FlashField[] {
  const fields: FlashField[] = [];
  for (const field in meta) if (isFlashField(field)) fields.push(field);
  // Plain code-unit order: the ids are fixed-width base 36, and a locale must not reorder them.
  return fields.length > 1 ? fields.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : fields;
}

/** The messages of `fields` (default: all of the meta's), oldest first. */
export function flashEntriesOf(
  meta: SessionMeta,
  fields: readonly FlashField[] = flashFieldsOf(meta),
): { level: string; message: string }[] {
  return fields.map((field) => {
    const [level, message] = meta[field] as [string, string];
    return { level, message };
  });
}
