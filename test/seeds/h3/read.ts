// Seed example as written; only the import lines differ, plus `app`, which the document leaves undeclared
import { createApp, defineEventHandler } from "h3";
import { useSession } from "../../../src/adapters/h3.js";

export const app = createApp();

app.use(
  defineEventHandler(async (event) => {
    const session = await useSession(event, {
      password: "80d42cfb-1cd2-462c-8f17-e3237d9027e9",
    });

    return session.data;
  }),
);
