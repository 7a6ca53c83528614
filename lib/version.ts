// The product version, from package.json: one source of truth for the CLI, CSI GetPluginInfo, the
// image labels and the chart's appVersion. Imported as a JSON module (not read from disk at run time),
// so the single-file CLI (npm run build:cli) carries it inside its bundle.
import pkg from "../package.json" with { type: "json" };

export const version: string = pkg.version;
export const packageName: string = pkg.name;
