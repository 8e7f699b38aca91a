// The demo's secret: SESSIONKIT_SECRET, else one kept in <data dir>/secret so a restart keeps everyone
// signed in. Two demos started at once on one data dir must end with one secret between them, and a
// start cut short must never leave a file that reads as an empty or shortened secret.
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

const SECRET_BYTES = 32;
/** sessionkit refuses a shorter secret (a ConfigError at createSessions). */
const MIN_SECRET_CHARS = 32;
const OWNER_ONLY = 0o600;
// Mode bits say nothing of who may read a file on Windows (ACLs do): there, they are left alone.
const POSIX = process.platform !== "win32";

/**
 * The demo's secret: `SESSIONKIT_SECRET` when set, else the one in `<dataDir>/secret`, made on the
 * first start (32 random bytes, base64url, mode 0600). Throws, naming the file to delete, when the
 * file is empty, too short or holds control characters.
 *
 * @example
 * ```ts
 * const sessions = createDemoSessions({ secret: demoSecret(".sessionkit"), store, storeLabel });
 * ```
 */
export function demoSecret(dataDir: string): string {
  if (process.env.SESSIONKIT_SECRET) return process.env.SESSIONKIT_SECRET;
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "secret");
  return readSecret(file) ?? createSecret(file);
}

/** The secret in `file`, or undefined when there is no such file. */
function readSecret(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const secret = text.trim();
  // A crash can leave a name whose bytes never reached the disk: empty, or zero-filled on some
  // filesystems. The message says what to do, never what the file holds.
  const fault =
    secret.length === 0
      ? "is empty"
      : secret.length < MIN_SECRET_CHARS
        ? `holds ${secret.length} characters where a secret needs at least ${MIN_SECRET_CHARS}`
        : // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
          /[\u0000-\u001f\u007f\ufffd]/u.test(secret)
          ? "holds control characters or bytes that are not text"
          : undefined;
  if (fault) {
    throw new Error(
      `the secret file ${file} ${fault}. Delete it and start again for a new secret ` +
        "(whoever is signed in is signed out), or set SESSIONKIT_SECRET",
    );
  }
  if (POSIX && (statSync(file).mode & 0o077) !== 0) {
    chmodSync(file, OWNER_ONLY);
    console.warn(`${file} was readable by other users: it is now mode 600`);
  }
  return secret;
}

/**
 * Writes a new secret under a temporary name, then links it to `file`: the name appears only with
 * the whole secret behind it, and the link fails if another demo made the file first, whose secret
 * is then the one used (POSIX link(2), or CreateHardLink on Windows: both refuse an existing name).
 */
function createSecret(file: string): string {
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  const temp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(temp, "wx", OWNER_ONLY);
  try {
    // The umask can only take bits away from the mode open was given; this makes it exactly 0600.
    if (POSIX) fchmodSync(fd, OWNER_ONLY);
    writeSync(fd, secret);
    // On disk before it has its name: a crash after the link cannot leave an empty secret file. A
    // crash before the directory entry is on disk loses the name instead, and the next start makes
    // a new secret, which signs everyone out but never reads a damaged one.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, file);
    return secret;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") {
      throw new Error(
        `cannot create the secret file ${file} (${code}${code === "EPERM" || code === "ENOTSUP" ? ": this filesystem may not support hard links" : ""}): use --data-dir on a local disk, or set SESSIONKIT_SECRET`,
        { cause: err },
      );
    }
    // Another demo got there first, and its file is already whole (or, deleted since, is made anew).
    return readSecret(file) ?? createSecret(file);
  } finally {
    unlinkSync(temp);
  }
}
