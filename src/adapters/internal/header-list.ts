import type { HeaderWriter } from "../../manager.js";

/**
 * The headers a commit writes, as plain lists for adapters that hand them to a framework's own
 * response object: a Fetch `Headers` costs several microseconds a request to build and read back,
 * which is most of what an unchanged session costs. Names come from the core, already lower-case.
 */
export class HeaderList implements HeaderWriter {
  /** A Fetch `Headers` as lists: its iteration gives each Set-Cookie line on its own. */
  static from(headers: Headers): HeaderList {
    const list = new HeaderList();
    for (const [name, value] of headers) list.append(name, value);
    return list;
  }

  /** Set-Cookie lines, in order. */
  readonly cookies: string[] = [];
  /** Every other header, one value per name. */
  readonly fields = new Map<string, string>();

  append(name: string, value: string): void {
    if (name === "set-cookie") this.cookies.push(value);
    else {
      const before = this.fields.get(name);
      this.fields.set(name, before === undefined ? value : `${before}, ${value}`);
    }
  }

  set(name: string, value: string): void {
    if (name === "set-cookie") this.cookies.splice(0, this.cookies.length, value);
    else this.fields.set(name, value);
  }

  get empty(): boolean {
    return this.cookies.length === 0 && this.fields.size === 0;
  }

  /** Copies the headers onto another writer (a Fetch `Headers`): Set-Cookie lines appended, the rest set. */
  appendTo(target: HeaderWriter): void {
    for (const line of this.cookies) target.append("set-cookie", line);
    for (const [name, value] of this.fields) target.set(name, value);
  }
}
