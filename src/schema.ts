import type { StandardSchemaV1 } from "@standard-schema/spec";

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
