// biome-ignore-all format: the Oak sessions seed's example, verbatim but for its import lines and port
// biome-ignore-all lint: the seed's code as written (an unused `session`)
import { Application, Router } from "@oakserver/oak";
import { OakSession, SqliteStore } from "sessionkit/oak";

const app = new Application();
const store = new SqliteStore('./database.db')

// Attach sessions to middleware
const session = new OakSession(app, store);

// ...
const router = new Router();

router.get("/", async (context) => {

    // Examples of getting and setting variables on a session
    if (await context.state.session.get("pageCount") === undefined) {
        await context.state.session.set("pageCount", 0);

    } else {
        await context.state.session.set("pageCount", await context.state.session.get("pageCount") + 1);
    }
    
    context.response.body = `Visited page ${await context.state.session.get("pageCount")} times`;
});

app.use(router.routes());
app.use(router.allowedMethods());

await app.listen({ port: Number(process.env.PORT ?? 8000) });
