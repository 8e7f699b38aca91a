import type { StandardSchemaV1 } from "@standard-schema/spec";

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
 * transforms run) or `undefined` when the data does not conform; never throws for bad data.
 */
export async function validateData(
  schema: StandardSchemaV1,
  data: unknown,
): Promise<Record<string, unknown> | undefined> {
  let result = schema["~standard"].validate(data);
  if (result instanceof Promise) result = await result;
  if (result.issues) return undefined;
  const value = result.value;
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
