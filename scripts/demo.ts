// `npm run demo`: the product's main job, offline. Until the webhook lands, it shows the CLI working.
import { main } from "../cli/main.ts";

process.exitCode = await main(["version"]);
