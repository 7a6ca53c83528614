// The Dockerfile is the one source of truth for the image's run-time metadata: the OCI builder
// (scripts/image.ts) reads ENTRYPOINT, CMD, ENV, USER, LABEL, WORKDIR and the COPY sources from it,
// and test/image checks that both stay in step. Parsing uses dockerfile-ast (the parser behind the
// Docker language server) rather than hand-written line splitting: continuations, quoting and the
// JSON (exec) form are the parts that are easy to get subtly wrong.
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import {
  DockerfileParser,
  type Instruction,
  JSONInstruction,
  type PropertyInstruction,
} from "dockerfile-ast";

export interface DockerfileSpec {
  from: string;
  /** ENV in order (a later one overrides an earlier one of the same name). */
  env: [string, string][];
  labels: Record<string, string>;
  workdir: string;
  /** USER, or undefined (the base image's: root). */
  user: string | undefined;
  entrypoint: string[];
  cmd: string[];
  /** COPY instructions: sources relative to the build context, destination absolute. */
  copies: { sources: string[]; dest: string }[];
}

export function parseDockerfile(path: string): DockerfileSpec {
  const text = readFileSync(path, "utf8");
  const df = DockerfileParser.parse(text);
  const spec: DockerfileSpec = {
    from: "",
    env: [],
    labels: {},
    workdir: "/",
    user: undefined,
    entrypoint: [],
    cmd: [],
    copies: [],
  };
  for (const ins of df.getInstructions()) {
    const kw = ins.getKeyword();
    const where = `${path}:${ins.getRange().start.line + 1}: ${kw}`;
    switch (kw) {
      case "FROM":
        spec.from = args(ins)[0] ?? "";
        break;
      case "ENV":
      case "LABEL":
        for (const p of (ins as PropertyInstruction).getProperties()) {
          // getValue() is the value as Docker reads it (quotes and escapes resolved).
          const value = p.getValue();
          if (value === null) throw new Error(`${where}: ${p.getName()} has no value (use NAME=value)`);
          if (kw === "ENV") spec.env.push([p.getName(), value]);
          else spec.labels[p.getName()] = value;
        }
        break;
      case "WORKDIR":
        spec.workdir = posix.resolve(spec.workdir, args(ins).join(" "));
        break;
      case "USER":
        spec.user = args(ins).join(" ");
        break;
      case "ENTRYPOINT":
      case "CMD": {
        const exec = jsonForm(ins, where);
        if (kw === "ENTRYPOINT") spec.entrypoint = exec;
        else spec.cmd = exec;
        break;
      }
      case "COPY": {
        const a = args(ins).filter((x) => !x.startsWith("--"));
        if (a.length < 2) throw new Error(`${where}: needs a source and a destination`);
        const dest = a.at(-1) as string;
        spec.copies.push({
          sources: a.slice(0, -1),
          dest: posix.resolve(spec.workdir, dest) + (dest.endsWith("/") ? "/" : ""),
        });
        break;
      }
      case "RUN":
        // Build-time only: what RUN installs, the OCI builder assembles from packages (scripts/image/rootfs.ts).
        break;
      default:
        throw new Error(`${where}: not understood by the OCI builder (scripts/image/dockerfile.ts)`);
    }
  }
  return spec;
}

function args(ins: Instruction): string[] {
  return ins.getArguments().map((a) => a.getValue());
}

/** ENTRYPOINT/CMD must use the exec (JSON) form: the image has no shell to run the other form. */
function jsonForm(ins: Instruction, where: string): string[] {
  if (!(ins instanceof JSONInstruction) || ins.getOpeningBracket() === null)
    throw new Error(`${where}: use the JSON form ["executable", "arg"]: the image has no /bin/sh`);
  return ins.getJSONStrings().map((s) => s.getJSONValue());
}

/** The ENV list as the OCI config wants it ("NAME=value", last definition of a name wins, first position kept). */
export function envList(env: [string, string][]): string[] {
  const m = new Map<string, string>();
  for (const [k, v] of env) m.set(k, v);
  return [...m].map(([k, v]) => `${k}=${v}`);
}
