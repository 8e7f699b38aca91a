/**
 * The adapter matrix on Express 4 (the "express4" alias of express@4), which the adapter supports
 * beside Express 5: its router ignores a middleware's promise, and its response prototypes chain the
 * same way, so both the error path and the response hold are exercised here too.
 */
import type express from "express";
import express4 from "express4";
import { describe, expect, it } from "vitest";
import { testAdapter } from "../conformance/adapter.js";
import { expectParentAnswersForSubApp, matrixApp } from "./express-app.js";

const createApp = express4 as unknown as typeof express;

testAdapter("express 4", (sessions) => matrixApp(createApp, sessions));

describe("sessionkit/express on Express 4", () => {
  it("is Express 4", async () => {
    const { createRequire } = await import("node:module");
    const version = createRequire(import.meta.url)("express4/package.json").version as string;
    expect(version.startsWith("4.")).toBe(true);
  });

  it("holds a response a parent app answers for a mounted sub-app's session", async () => {
    await expectParentAnswersForSubApp(createApp);
  });
});
