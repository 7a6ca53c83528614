// The graph of one volume as an SVG drawn on the server: StorageClass and Secret (names only) → PV →
// PVC → app pods → the Mount Pods on their nodes, each box coloured by the doctor's verdict on it.
// Columns, one row per object: a layout that needs no client-side library and reads at a glance.
import type { V1Pod } from "@kubernetes/client-node";
import type { Diagnosis, Verdict } from "../driver/doctor/engine.ts";
import { publishSecretRef } from "../driver/doctor/snapshot.ts";
import { html, type Safe } from "./html.ts";
import { isReady, type VolumeIndex } from "./model.ts";

export interface GraphNode {
  id: string;
  kind: "storageclass" | "secret" | "pv" | "pvc" | "pod" | "mount-pod";
  label: string;
  sub?: string;
  href?: string;
  verdict: Verdict;
  column: number;
}

export interface Graph {
  nodes: GraphNode[];
  edges: [string, string][];
}

const worse = (a: Verdict, b: Verdict): Verdict => {
  const rank: Record<Verdict, number> = { broken: 0, unknown: 1, warning: 2, ok: 3, skipped: 4 };
  return rank[a] <= rank[b] ? a : b;
};

/**
 * The worst verdict the doctor gave `objects` (kubectl spelling): in this volume's chain, or as a row
 * of the cluster-wide diagnosis (an app pod's own chain); else `fallback`.
 */
function verdictOf(d: Diagnosis, objects: string[], fallback: Verdict, rows?: RowVerdicts): Verdict {
  let v: Verdict | undefined;
  for (const o of objects) {
    const r = rows?.get(o);
    if (r) v = v ? worse(v, r) : r;
  }
  for (const l of d.links)
    if (objects.includes(l.object) && l.verdict !== "skipped") v = v ? worse(v, l.verdict) : l.verdict;
  return v ?? fallback;
}

const podHref = (p: V1Pod) =>
  `/pods/${encodeURIComponent(p.metadata?.namespace ?? "")}/${encodeURIComponent(p.metadata?.name ?? "")}`;

/** Object (kubectl spelling) → verdict of its row in the cluster-wide diagnosis (unhealthy ones only). */
export type RowVerdicts = ReadonlyMap<string, Verdict>;

export function volumeGraph(
  idx: VolumeIndex,
  pvName: string,
  d: Diagnosis,
  rows?: RowVerdicts,
): Graph | undefined {
  const pv = idx.pvs.find((p) => p.metadata?.name === pvName);
  if (!pv) return undefined;
  const nodes: GraphNode[] = [];
  const edges: [string, string][] = [];
  const pvId = `pv:${pvName}`;
  nodes.push({
    id: pvId,
    kind: "pv",
    label: pvName,
    sub: pv.status?.phase ?? "",
    href: `/volumes/${encodeURIComponent(pvName)}`,
    verdict: verdictOf(d, [`pv/${pvName}`], "ok"),
    column: 1,
  });
  const sc = pv.spec?.storageClassName;
  if (sc) {
    nodes.push({
      id: `sc:${sc}`,
      kind: "storageclass",
      label: sc,
      sub: "StorageClass",
      verdict: verdictOf(d, [`storageclass/${sc}`], "ok"),
      column: 0,
    });
    edges.push([`sc:${sc}`, pvId]);
  }
  const sref = publishSecretRef(pv);
  if (sref) {
    nodes.push({
      id: `secret:${sref.namespace}/${sref.name}`,
      kind: "secret",
      label: sref.name,
      sub: `Secret in ${sref.namespace}`,
      verdict: verdictOf(d, [`secret/${sref.name} -n ${sref.namespace}`], "ok"),
      column: 0,
    });
    edges.push([`secret:${sref.namespace}/${sref.name}`, pvId]);
  }
  const claimKey = idx.claimOfPv.get(pvName);
  const pods = claimKey ? (idx.podsOfClaim.get(claimKey) ?? []) : [];
  if (claimKey) {
    const [ns, name] = claimKey.split("/") as [string, string];
    const pvc = idx.pvcByKey.get(claimKey);
    nodes.push({
      id: `pvc:${claimKey}`,
      kind: "pvc",
      label: name,
      sub: `${pvc?.status?.phase ?? ""} in ${ns}`,
      verdict: verdictOf(d, [`pvc/${name} -n ${ns}`], "ok", rows),
      column: 2,
    });
    edges.push([pvId, `pvc:${claimKey}`]);
    for (const p of pods) {
      const id = `pod:${p.metadata?.namespace}/${p.metadata?.name}`;
      nodes.push({
        id,
        kind: "pod",
        label: p.metadata?.name ?? "",
        sub: `${p.status?.phase ?? "Pending"} on ${p.spec?.nodeName ?? "?"}`,
        href: podHref(p),
        verdict: verdictOf(
          d,
          [`pod/${p.metadata?.name} -n ${p.metadata?.namespace}`],
          isReady(p) ? "ok" : "warning",
          rows,
        ),
        column: 3,
      });
      edges.push([`pvc:${claimKey}`, id]);
    }
  }
  for (const mp of idx.mountPodsOf(pv)) {
    const id = `mp:${mp.metadata?.namespace}/${mp.metadata?.name}`;
    const node = mp.spec?.nodeName ?? "";
    nodes.push({
      id,
      kind: "mount-pod",
      label: mp.metadata?.name ?? "",
      sub: `Mount Pod on ${node}`,
      href: podHref(mp),
      verdict: verdictOf(
        d,
        [`pod/${mp.metadata?.name} -n ${mp.metadata?.namespace}`],
        mp.metadata?.deletionTimestamp ? "broken" : isReady(mp) ? "ok" : "warning",
        rows,
      ),
      column: 4,
    });
    const served = pods.filter((p) => p.spec?.nodeName === node);
    if (served.length)
      for (const p of served) edges.push([`pod:${p.metadata?.namespace}/${p.metadata?.name}`, id]);
    else edges.push([pvId, id]);
  }
  return { nodes, edges };
}

const colours: Record<Verdict, string> = {
  ok: "#2e7d32",
  warning: "#ed6c02",
  broken: "#c62828",
  unknown: "#6d6d6d",
  skipped: "#9e9e9e",
};
const kindLabel: Record<GraphNode["kind"], string> = {
  storageclass: "StorageClass",
  secret: "Secret",
  pv: "PV",
  pvc: "PVC",
  pod: "Pod",
  "mount-pod": "Mount Pod",
};

const W = 210;
const H = 54;
const GAPX = 50;
const GAPY = 16;

export function renderGraph(g: Graph): Safe {
  const rows = new Map<number, number>();
  const pos = new Map<string, { x: number; y: number }>();
  for (const n of g.nodes) {
    const row = rows.get(n.column) ?? 0;
    rows.set(n.column, row + 1);
    pos.set(n.id, { x: 10 + n.column * (W + GAPX), y: 10 + row * (H + GAPY) });
  }
  const width = 20 + 5 * W + 4 * GAPX;
  const height = 20 + Math.max(1, ...rows.values()) * (H + GAPY);
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const edges = g.edges.map(([a, b]) => {
    const p = pos.get(a);
    const q = pos.get(b);
    if (!p || !q) return html``;
    return html`<path class="edge" d="M${p.x + W} ${p.y + H / 2} C${p.x + W + GAPX / 2} ${p.y + H / 2} ${q.x - GAPX / 2} ${q.y + H / 2} ${q.x} ${q.y + H / 2}" />`;
  });
  const boxes = g.nodes.map((n) => {
    const p = pos.get(n.id)!;
    const box = html`<g class="node verdict-${n.verdict}" data-kind="${n.kind}" data-name="${n.label}" data-verdict="${n.verdict}">
<title>${kindLabel[n.kind]} ${n.label}: ${n.verdict}</title>
<rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="6" fill="#fff" stroke="${colours[n.verdict]}" stroke-width="3" />
<text x="${p.x + 10}" y="${p.y + 18}" class="kind">${kindLabel[n.kind]} · ${n.verdict}</text>
<text x="${p.x + 10}" y="${p.y + 34}" class="name">${clip(n.label, 28)}</text>
<text x="${p.x + 10}" y="${p.y + 48}" class="sub">${clip(n.sub ?? "", 32)}</text>
</g>`;
    return n.href ? html`<a href="${n.href}">${box}</a>` : box;
  });
  return html`<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" aria-label="volume graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${edges}${boxes}</svg>`;
}
