import type { SessionData } from "./session.js";

/**
 * Register your session data type once, and the Express, Koa and Fastify adapters type the request's
 * session by it everywhere (`req.session`, `ctx.session`, `request.session`, their guards):
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * const schema = z.object({ userId: z.string().optional(), visits: z.number().default(0) });
 * declare module "sessionkit" {
 *   interface Register { data: z.infer<typeof schema> }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by the application's module augmentation
export interface Register {}

/** The registered data type, or `SessionData` when nothing is registered. */
export type RegisteredSessionData = Register extends { data: infer D extends SessionData }
  ? D
  : SessionData;
