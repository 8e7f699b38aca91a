import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { MaybePromise } from "./crypto/backend.js";

/**
 * Where `data` fails the schema: the issues' paths ("theme", "cart.0.qty"), or undefined when it
 * passes. Paths only: a validator's message may quote the value, and a session value has no place in
 * an error message.
 */
export async function dataIssues(
  schema: StandardSchemaV1,
  data: unknown,
): Promise<string[] | undefined> {
  let result = schema["~standard"].validate(data);
  if (result instanceof Promise) result = await result;
  if (!result.issues) return undefined;
  return result.issues.map(
    (issue) =>
      issue.path?.map((part) => String(typeof part === "object" ? part.key : part)).join(".") ||
      "(the whole object)",
  );
}

/**
 * Validates session data with any Standard Schema. Returns the schema's output (defaults applied,
 * transforms run) or `undefined` when the data does not conform; never throws for bad data. A schema
 * that validates synchronously (Zod, Valibot and ArkType without async refinements) answers
 * synchronously, so a load that waits on nothing else needs no promise.
 */
export function validateData(
  schema: StandardSchemaV1,
  data: unknown,
): MaybePromise<Record<string, unknown> | undefined> {
  const result = schema["~standard"].validate(data);
  return result instanceof Promise ? result.then(objectOutput) : objectOutput(result);
}

function objectOutput(
  result: StandardSchemaV1.Result<unknown>,
): Record<string, unknown> | undefined {
  if (result.issues) return undefined;
  const value = result.value;
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * What the schema says its output is, when that is not an object: the JSON Schema `type` of the
 * schemas that can describe themselves (Standard JSON Schema: Zod 4, ArkType), e.g. `"string"`.
 * `undefined` when it is an object, when the schema cannot say (Valibot, a transform) or says
 * something looser (a union): those are left to validation, which refuses non-objects anyway.
 */
export function nonObjectOutput(schema: StandardSchemaV1): string | undefined {
  const describe = (
    schema["~standard"] as {
      jsonSchema?: { output?: (options: { target: string }) => unknown };
    }
  ).jsonSchema?.output;
  if (typeof describe !== "function") return undefined;
  let type: unknown;
  try {
    type = (describe({ target: "draft-2020-12" }) as { type?: unknown } | null)?.type;
  } catch {
    return undefined; // not expressible as JSON Schema (a transform, a custom type): say nothing
  }
  if (typeof type === "string") return type === "object" ? undefined : type;
  if (Array.isArray(type) && type.length > 0 && !type.includes("object")) return type.join(" or ");
  return undefined;
}
