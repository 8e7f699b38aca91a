// Seed example as written; only the import lines differ, plus `app`, which the document leaves undeclared
// biome-ignore-all format: the seed's code, laid out as the document writes it
import { createApp, defineEventHandler } from "h3";
import { useSession } from "../../../src/adapters/h3.js";

export const app = createApp();

app.use(
  defineEventHandler(async (event) => {
    const session = await useSession(event, {
      password: "80d42cfb-1cd2-462c-8f17-e3237d9027e9",
    });

    const count = (session.data.count || 0) + 1;
    await session.update({
      count: count,
    });

    return count === 0
      ? "Hello world!"
      : `Hello world! You have visited this page ${count} times.`;
  }),
);
