// `juicefs-csi doctor`: gather a snapshot with the user's kubeconfig, judge it, print one screen.
// Human output: one line per link, the first broken one explained; `-o json`: the Diagnosis as is.
import type { KubeConfig } from "@kubernetes/client-node";
import {
  type Diagnosis,
  diagnose,
  diagnoseAll,
  type Link,
  type SummaryRow,
} from "../../driver/doctor/engine.ts";
import type { Snapshot, Target, TargetKind } from "../../driver/doctor/snapshot.ts";
import { UsageError } from "../errors.ts";

export interface DoctorOptions {
  namespace?: string;
  all?: boolean;
  output?: string;
  kubeconfig?: string;
  context?: string;
  mountMode?: Snapshot["mountMode"];
  stderr?: (s: string) => void;
}

const kindAliases: Record<string, TargetKind> = {
  pod: "pod",
  pods: "pod",
  po: "pod",
  pvc: "pvc",
  pvcs: "pvc",
  persistentvolumeclaim: "pvc",
  persistentvolumeclaims: "pvc",
  pv: "pv",
  pvs: "pv",
  persistentvolume: "pv",
  persistentvolumes: "pv",
};

/** `pod/NAME`, `pvc/NAME`, `pv/NAME` (kubectl's spelling, plural and long kinds accepted). */
export function parseTarget(arg: string | undefined, namespace: string | undefined): Target {
  const m = arg ? /^([A-Za-z]+)\/([^/\s]+)$/.exec(arg) : null;
  const kind = m ? kindAliases[m[1]!.toLowerCase()] : undefined;
  if (!m || !kind)
    throw new UsageError(
      `doctor: give pod/NAME, pvc/NAME or pv/NAME (or --all)${arg ? `, not "${arg}"` : ""}`,
    );
  return kind === "pv" ? { kind, name: m[2]! } : { kind, name: m[2]!, namespace: namespace ?? "default" };
}

export function loadKubeConfig(kubeconfig?: string, context?: string): Promise<KubeConfig> {
  return import("@kubernetes/client-node").then((k8s) => {
    const kc = new k8s.KubeConfig();
    try {
      if (kubeconfig) kc.loadFromFile(kubeconfig);
      else kc.loadFromDefault();
    } catch (e) {
      throw new UsageError(`cannot load kubeconfig ${kubeconfig ?? "(default)"}: ${(e as Error).message}`);
    }
    if (context) {
      if (!kc.getContexts().some((c) => c.name === context))
        throw new UsageError(`--context ${context}: no such context`);
      kc.setCurrentContext(context);
    }
    if (!kc.getCurrentCluster())
      throw new UsageError("no cluster in the kubeconfig (set KUBECONFIG or --kubeconfig)");
    return kc;
  });
}

export async function doctorCommand(
  arg: string | undefined,
  o: DoctorOptions,
): Promise<{ output: string; healthy: boolean }> {
  const output = o.output ?? "text";
  if (output !== "text" && output !== "json")
    throw new UsageError(`-o ${output}: use json (or leave it out)`);
  if (o.all && arg) throw new UsageError("doctor: give either an object or --all, not both");
  const target = o.all ? undefined : parseTarget(arg, o.namespace);
  const kc = await loadKubeConfig(o.kubeconfig, o.context);
  const { gatherSnapshot } = await import("./gather.ts");
  const progress = (l: string) => o.stderr?.(`doctor: ${l}\n`);
  const snapshot = await gatherSnapshot({
    kc,
    target: target ?? { all: true, ...(o.namespace ? { namespace: o.namespace } : {}) },
    progress,
    ...(o.mountMode ? { mountMode: o.mountMode } : {}),
  });
  if (!target) {
    const { rows, checked } = diagnoseAll(snapshot);
    const healthy = !rows.some((r) => r.verdict === "broken");
    return {
      healthy,
      output:
        output === "json"
          ? `${JSON.stringify({ healthy, checked, problems: rows, unreadable: snapshot.failures }, null, 2)}\n`
          : renderTable(rows, checked, snapshot),
    };
  }
  const d = diagnose(snapshot);
  return {
    healthy: d.healthy,
    output:
      output === "json"
        ? `${JSON.stringify({ ...d, unreadable: snapshot.failures }, null, 2)}\n`
        : renderDiagnosis(d, snapshot),
  };
}

const marks: Record<Link["verdict"], string> = {
  ok: "ok  ",
  broken: "FAIL",
  warning: "warn",
  unknown: "??  ",
  skipped: "--  ",
};

export function renderDiagnosis(d: Diagnosis, s?: Snapshot): string {
  const lines: string[] = [`doctor ${d.target}`];
  const width = Math.max(...d.links.map((l) => l.id.length));
  for (const l of d.links)
    lines.push(`  ${marks[l.verdict]} ${l.id.padEnd(width)}  ${l.object}: ${l.summary}`);
  const b = d.firstBroken;
  if (b) {
    lines.push("", `First broken link: ${b.id} (${b.object}) [${b.code}]`);
    if (b.why) lines.push(`  why: ${b.why}`);
    if (b.fix) lines.push(`  fix: ${b.fix}`);
    for (const e of b.evidence ?? []) lines.push(`  | ${e}`);
  } else {
    const warn = d.links.find((l) => l.verdict === "warning" && (l.why || l.fix));
    lines.push("", "No broken link found.");
    if (warn) {
      lines.push(`Note: ${warn.id} (${warn.object}): ${warn.summary}`);
      if (warn.fix) lines.push(`  fix: ${warn.fix}`);
    }
  }
  for (const f of s?.failures ?? []) lines.push(`(could not read ${f.what}: ${f.message})`);
  return `${lines.join("\n")}\n`;
}

export function renderTable(rows: SummaryRow[], checked: number, s?: Snapshot): string {
  const out: string[] = [];
  if (rows.length === 0) out.push(`all ${checked} JuiceFS pods, claims and Mount Pods look healthy`);
  else {
    const w = Math.max(6, ...rows.map((r) => r.object.length));
    const cw = Math.max(4, ...rows.map((r) => r.code.length));
    out.push(`${"OBJECT".padEnd(w)}  ${"VERDICT".padEnd(7)}  ${"CODE".padEnd(cw)}  SUMMARY`);
    for (const r of rows)
      out.push(`${r.object.padEnd(w)}  ${r.verdict.padEnd(7)}  ${r.code.padEnd(cw)}  ${r.summary}`);
    out.push("", `${rows.length} of ${checked} checked need attention; details: juicefs-csi doctor <OBJECT>`);
  }
  for (const f of s?.failures ?? []) out.push(`(could not read ${f.what}: ${f.message})`);
  return `${out.join("\n")}\n`;
}
