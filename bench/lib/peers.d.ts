// Type declarations for benchmark peers that publish none; only what bench/ uses.

declare module "connect-pg-simple" {
  import type session from "express-session";

  interface Options {
    pool?: import("pg").Pool;
    tableName?: string;
    createTableIfMissing?: boolean;
    pruneSessionInterval?: number | false;
  }
  function connectPgSimple(s: typeof session): new (options?: Options) => session.Store;
  export default connectPgSimple;
}
