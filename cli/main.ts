// The juicefs-csi command: one binary, one subcommand per process the product runs.
// Implementations are imported lazily so `version` and usage errors stay instant.

import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { DashboardOptions } from "../dashboard/main.ts";
import { containerPaths, paths } from "../driver/juicefs/constants.ts";
import { logLevels } from "../lib/log.ts";
import { isSingleExecutable } from "../lib/sea.ts";
import { packageName, version } from "../lib/version.ts";
import { exitCodes, UsageError } from "./errors.ts";
import { readInputFile } from "./io.ts";

export interface CliIO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** stderr is a terminal (progress bars); default false. */
  stderrIsTTY?: boolean;
}

const defaultIO: CliIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  stderrIsTTY: process.stderr.isTTY === true,
};

function logLevelOption(): Option {
  return new Option("--log-level <level>", "log level (also $LOG_LEVEL)").choices(logLevels as string[]);
}

export interface ProgramOptions {
  /** How the user called it: "juicefs-csi" (default) or "kubectl jfs" (the kubectl plugin). */
  name?: string | undefined;
}

export function buildProgram(io: CliIO, opts: ProgramOptions = {}): Command {
  const program = new Command(opts.name ?? "juicefs-csi")
    .description("JuiceFS CSI driver: CSI plugin, admission webhook and offline tools")
    .version(version, "-V, --version", "print the version")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} });

  program
    .command("version")
    .description("print the version")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean }) => {
      const info = { name: packageName, version, node: process.version };
      io.stdout(
        opts.json ? `${JSON.stringify(info)}\n` : `juicefs-csi ${version} (node ${process.version})\n`,
      );
    });

  program
    .command("driver")
    .description("run the CSI plugin (gRPC on a unix socket)")
    .option("--endpoint <url>", "CSI endpoint", process.env.CSI_ENDPOINT ?? "unix:///csi/csi.sock")
    .option("--node-id <name>", "node name (also $NODE_NAME)", process.env.NODE_NAME)
    .addOption(
      new Option("--services <list>", "CSI services to serve")
        .choices(["controller", "node", "all"])
        .default("all"),
    )
    .addOption(
      new Option("--mount-mode <mode>", "where the JuiceFS client runs")
        .choices(["pod", "process", "sidecar"])
        .default(process.env.JUICEFS_MOUNT_MODE ?? "pod"),
    )
    .option("--config <file>", "driver configuration file (YAML)")
    .option(
      "--global-config <file>",
      "global config (ConfigMap juicefs-csi-driver-config's config.yaml, mounted): mountPodPatch for new Mount Pods and sidecars, re-read every 10 s",
    )
    .option("--driver-name <name>", "CSI driver name reported to the CO", "csi.juicefs.com")
    .option("--juicefs-path <file>", "juicefs executable for process-mode clients (default: juicefs on PATH)")
    .option("--state-dir <dir>", "records and logs of process-mode clients", "/var/lib/juicefs/csi")
    .option("--kubelet-dir <dir>", "the kubelet's root directory", paths.defaultKubeletDir)
    .option("--metrics-port <port>", "serve Prometheus metrics on this port (0: off)", "0")
    .addOption(logLevelOption())
    .allowExcessArguments(false)
    .action(async (opts: Record<string, unknown>) => {
      serverCommandAvailable("driver");
      const { runDriver } = await import("../driver/main.ts");
      await runDriver(opts);
    });

  program
    .command("webhook")
    .description("run the admission webhook (HTTPS)")
    .option("--port <port>", "HTTPS port (0-65535)", parsePort, "9443")
    .option("--tls-cert-file <file>", "serving certificate (PEM)", defaultWebhookCerts.cert)
    .option("--tls-key-file <file>", "serving key (PEM)", defaultWebhookCerts.key)
    .option(
      "--client-ca-file <file>",
      "CA (PEM) of the API server's client certificate: require it on admission routes",
    )
    .option("--config <file>", "driver configuration file (YAML)")
    .option(
      "--global-config <file>",
      "global config (ConfigMap juicefs-csi-driver-config's config.yaml, mounted): mountPodPatch for new Mount Pods and sidecars, re-read every 10 s",
    )
    .addOption(logLevelOption())
    .allowExcessArguments(false)
    .action(async (opts: Record<string, unknown>) => {
      serverCommandAvailable("webhook");
      checkWebhookCerts(String(opts.tlsCertFile), String(opts.tlsKeyFile));
      const { runWebhook } = await import("../webhook/main.ts");
      await runWebhook(opts);
    });

  program
    .command("dashboard")
    .description(
      "serve the dashboard (HTTP): the doctor's verdicts, volume graphs, Mount Pods, logs; read-only",
    )
    .option("--port <port>", "port (0-65535)", parsePort, "8088")
    .option(
      "--address <ip>",
      "address to listen on (default 127.0.0.1: reach it with kubectl port-forward)",
      "127.0.0.1",
    )
    .option("--kubeconfig <file>", "kubeconfig (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kubeconfig context")
    .addOption(
      new Option(
        "--auth <mode>",
        "none: whoever reaches the port sees what the dashboard's ServiceAccount reads; token: users sign in with their Kubernetes token, each view checked with SubjectAccessReview",
      )
        .choices(["none", "token"])
        .default("none"),
    )
    .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM)")
    .option("--tls-key <file>", "key of --tls-cert (PEM)")
    .addOption(logLevelOption())
    .allowExcessArguments(false)
    .action(async (opts: DashboardOptions) => {
      serverCommandAvailable("dashboard");
      if (!!opts.tlsCert !== !!opts.tlsKey) throw new UsageError("--tls-cert and --tls-key go together");
      for (const [flag, file] of [
        ["--tls-cert", opts.tlsCert],
        ["--tls-key", opts.tlsKey],
      ] as const)
        if (file && !existsSync(file)) throw new UsageError(`${flag} ${file}: no such file`);
      if (opts.auth === "none" && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(opts.address))
        io.stderr(
          `warning: --address ${opts.address} with --auth none: anyone who reaches the port sees what the dashboard's ServiceAccount reads\n`,
        );
      const { runDashboard } = await import("../dashboard/main.ts");
      await runDashboard(opts);
    });

  program
    .command("write-envs")
    .description("write each variable of a Secret's envs value to its own file (sidecar init container)")
    .requiredOption("--from <file>", "the Secret's envs value, mounted from a Secret volume")
    .requiredOption("--to <dir>", "folder to write one file per variable into")
    .action(async (opts: { from: string; to: string }) => {
      const { writeEnvs } = await import("./write-envs.ts");
      const { names } = await writeEnvs(opts);
      io.stderr(`wrote ${names.length} variable(s): ${names.join(", ")}\n`);
    });

  program
    .command("inject")
    .description("inject the JuiceFS sidecar into pod manifests offline and print the result")
    .requiredOption("-f, --file <file>", "pod manifest(s), YAML or JSON ('-' for stdin)")
    .option("--manifests <file...>", "PVC/PV/StorageClass/Secret manifests the pod refers to")
    .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .option(
      "--kubernetes-version <version>",
      "version of the target cluster's kubelets: native sidecars from 1.29, else classic (refused without --allow-classic-sidecar)",
      "1.29",
    )
    .option(
      "--allow-classic-sidecar",
      "accept classic sidecars' risk, as the chart value webhook.sidecar.allowClassic",
    )
    .action(
      async (opts: {
        file: string;
        manifests?: string[];
        output: string;
        kubernetesVersion: string;
        allowClassicSidecar?: boolean;
      }) => {
        const input = await readInputFile(opts.file);
        const context = await Promise.all((opts.manifests ?? []).map((f) => readInputFile(f, "--manifests")));
        const { injectOffline } = await import("../webhook/offline.ts");
        const result = await injectOffline({
          pods: input,
          context,
          output: opts.output,
          kubernetesVersion: opts.kubernetesVersion,
          allowClassic: opts.allowClassicSidecar === true,
        });
        for (const w of result.warnings) io.stderr(`warning: ${w}\n`);
        // A refusal goes to stderr only: `inject ... | kubectl apply -f -` must never apply an error.
        if (!result.ok) {
          io.stderr(result.output);
          throw new CommandFailed();
        }
        io.stdout(result.output);
      },
    );

  program
    .command("validate")
    .description("validate Secrets, PVs, PVCs, StorageClasses and pods offline")
    .requiredOption("-f, --file <file>", "manifest(s), YAML or JSON ('-' for stdin)")
    .action(async (opts: { file: string }) => {
      const input = await readInputFile(opts.file);
      const { validateOffline } = await import("../webhook/offline.ts");
      const result = await validateOffline({ manifests: input });
      io.stdout(result.output);
      if (!result.ok) throw new CommandFailed();
    });

  program
    .command("lint-values")
    .description("check Helm values for the chart: values schema, helm lint --strict, Kubernetes schemas")
    .requiredOption("-f, --file <file...>", "values file(s), applied in order like helm -f ('-' for stdin)")
    .option("--chart <dir>", "chart directory (default: the chart next to this command)")
    .option("--helm <path>", "helm binary (default: $HELM, the project's helm, else helm on PATH)")
    .option("-n, --namespace <ns>", "release namespace to render for", "kube-system")
    .option("--kube-version <version>", "Kubernetes version to render for")
    .action(
      async (opts: {
        file: string[];
        chart?: string;
        helm?: string;
        namespace: string;
        kubeVersion?: string;
      }) => {
        const { lintValuesCommand } = await import("./lint-values.ts");
        const r = await lintValuesCommand(opts);
        io.stdout(r.output);
        if (!r.ok) throw new CommandFailed();
      },
    );

  program
    .command("doctor")
    .description(
      "diagnose a pod, claim or volume: walks pod → PVC → PV → Secret → node plugin → Mount Pod → mount → webhook",
    )
    .argument("[object]", "pod/NAME, pvc/NAME or pv/NAME")
    .option("-n, --namespace <ns>", "namespace of the pod or claim (with --all: only this namespace)")
    .option("-A, --all", "every unhealthy JuiceFS pod, claim and Mount Pod in one table")
    .option("-o, --output <format>", "json for machines (default: text)")
    .option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kubeconfig context")
    .addOption(
      new Option(
        "--mount-mode <mode>",
        "the driver's mount mode (default: read from the node plugin)",
      ).choices(["pod", "process", "sidecar"]),
    )
    .action(
      async (
        object: string | undefined,
        opts: {
          namespace?: string;
          all?: boolean;
          output?: string;
          kubeconfig?: string;
          context?: string;
          mountMode?: "pod" | "process" | "sidecar";
        },
      ) => {
        const { doctorCommand } = await import("./doctor/command.ts");
        const r = await doctorCommand(object, { ...opts, stderr: io.stderr });
        io.stdout(r.output);
        if (!r.healthy) throw new CommandFailed();
      },
    );

  program
    .command("collect")
    .description(
      "write a support bundle (.tar.gz): objects, events, logs, the doctor's verdict; credentials redacted",
    )
    .argument("[object]", "pod/NAME, pvc/NAME or pv/NAME")
    .option("-n, --namespace <ns>", "namespace of the pod or claim (with --all: only this namespace)")
    .option("-A, --all", "every JuiceFS pod, claim and Mount Pod")
    .option("--out <file>", "archive to write (default: juicefs-csi-bundle-<time>.tar.gz here)")
    .option("--max-bytes <n>", "uncompressed size budget; logs beyond it are left out", "67108864")
    .option("--timeout <seconds>", "overall time budget", "120")
    .option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kubeconfig context")
    .action(
      async (
        object: string | undefined,
        opts: {
          namespace?: string;
          all?: boolean;
          out?: string;
          maxBytes: string;
          timeout: string;
          kubeconfig?: string;
          context?: string;
        },
      ) => {
        const maxBytes = Number(opts.maxBytes);
        const timeout = Number(opts.timeout);
        if (!Number.isInteger(maxBytes) || maxBytes <= 0)
          throw new UsageError(`--max-bytes ${opts.maxBytes}: give a positive whole number of bytes`);
        if (!(timeout > 0))
          throw new UsageError(`--timeout ${opts.timeout}: give a positive number of seconds`);
        const { collectCommand } = await import("./doctor/collect.ts");
        const r = await collectCommand(object, {
          ...opts,
          ...(opts.out ? { file: opts.out } : {}),
          maxBytes,
          timeoutMs: timeout * 1000,
          stderr: io.stderr,
        });
        io.stdout(r.summary);
      },
    );

  program
    .command("warmup")
    .description(
      "warm up the cache of a JuiceFS claim: runs juicefs warmup in the clients that mount it (Mount Pods, sidecars) through pods/exec, or, when none runs, in a Job that mounts the claim",
    )
    .argument("<claim>", "pvc/NAME")
    .option(
      "-n, --namespace <ns>",
      "namespace of the claim (default: the kubeconfig context's, else default)",
    )
    .option(
      "--path <path>",
      "a directory or file to warm up, relative to the volume's root or absolute under where a pod mounts the claim; repeatable (default: the whole volume)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--threads <n>", "concurrent workers of juicefs warmup (default: the client's, 50)")
    .option(
      "--background",
      "start it and return; the client fills its cache on its own (the Job path: the Job is left running)",
    )
    .option(
      "--node <name>",
      "only the client on this node (default: every running client of the volume); the Job path: run the Job there",
    )
    .option(
      "--image <image>",
      "the Job path: the JuiceFS client image of the Job (default: the claim's juicefs/mount-image, else the edition's mount image)",
    )
    .option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kubeconfig context")
    .action(
      async (
        claim: string,
        opts: {
          namespace?: string;
          path: string[];
          threads?: string;
          background?: boolean;
          node?: string;
          image?: string;
          kubeconfig?: string;
          context?: string;
        },
      ) => {
        if (opts.threads !== undefined && !/^\d+$/.test(opts.threads))
          throw new UsageError(`--threads ${opts.threads}: give a whole number from 1 to 65535`);
        const { warmupCommand } = await import("./warmup/command.ts");
        const { WarmupError } = await import("./warmup/plan.ts");
        try {
          const r = await warmupCommand(claim, {
            namespace: opts.namespace,
            paths: opts.path,
            threads: opts.threads === undefined ? undefined : Number(opts.threads),
            background: opts.background === true,
            node: opts.node,
            image: opts.image,
            kubeconfig: opts.kubeconfig,
            context: opts.context,
            stdout: io.stdout,
            stderr: io.stderr,
            tty: io.stderrIsTTY === true,
          });
          if (!r.ok) throw new CommandFailed();
        } catch (e) {
          if (e instanceof WarmupError && e.exitCode === 2) throw new UsageError(e.message);
          throw e;
        }
      },
    );

  return program;
}

/** A port number on the command line; anything else is a usage error (exit 2) naming the flag. */
function parsePort(value: string): string {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    throw new InvalidArgumentError("not a port number (0-65535).");
  return value;
}

/** Where the chart mounts the webhook's TLS Secret (templates/webhook.yaml). */
const defaultWebhookCerts = {
  cert: `${containerPaths.webhookCertDir}/tls.crt`,
  key: `${containerPaths.webhookCertDir}/tls.key`,
};

/**
 * Missing certificate files are a usage error that says which flag, and, at the chart's default
 * paths, that the TLS Secret is not mounted: a raw ENOENT from deep inside TLS set-up says neither.
 */
function checkWebhookCerts(cert: string, key: string): void {
  for (const [flag, file, def] of [
    ["--tls-cert-file", cert, defaultWebhookCerts.cert],
    ["--tls-key-file", key, defaultWebhookCerts.key],
  ] as const) {
    let why: string | undefined;
    try {
      if (!statSync(file).isFile()) why = "not a file";
    } catch (err) {
      why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(err);
    }
    if (why === undefined) continue;
    const hint =
      file === def
        ? `the webhook's TLS Secret (keys tls.crt and tls.key) is not mounted at ${dirname(def)}; in the chart it is <release>-webhook-tls (webhook.tls.source), elsewhere pass ${flag}`
        : `pass ${flag} with the PEM file`;
    throw new UsageError(`${flag} ${file}: ${why} (${hint})`);
  }
}

/**
 * The single-file CLI (Node SEA, \`npm run build:cli\`) carries the offline tools only; the servers
 * need the project's node_modules and proto files, which ship in the image.
 */
function serverCommandAvailable(cmd: string): void {
  if (isSingleExecutable())
    throw new UsageError(
      `${cmd}: not part of the single-file CLI; run it from the juicefs-csi image (or a checkout: npx juicefs-csi ${cmd})`,
    );
}

/** The command ran and reported its own failure (e.g. invalid manifests): exit 1, nothing more to print. */
class CommandFailed extends Error {}

/** Runs the CLI and returns the exit code: 0 ok, 1 the command failed, 2 usage error. */
export async function main(
  argv: string[],
  io: CliIO = defaultIO,
  opts: ProgramOptions = {},
): Promise<number> {
  const program = buildProgram(io, opts);
  const prefix = `${opts.name ?? "juicefs-csi"}: `;
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCodes.ok;
  } catch (err) {
    if (err instanceof CommandFailed) return exitCodes.failure;
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return exitCodes.ok;
      if (err.code === "commander.help") return exitCodes.ok;
      io.stderr(`${prefix}${oneLine(err.message.replace(/^error: /, ""))}\n`);
      return exitCodes.usage;
    }
    if (err instanceof UsageError) {
      io.stderr(`${prefix}${oneLine(err.message)}\n`);
      return exitCodes.usage;
    }
    io.stderr(`${prefix}${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    return exitCodes.failure;
  }
}

function oneLine(s: string): string {
  return s.split("\n").filter(Boolean).join("; ");
}
