// The pages, as server-rendered HTML (html.ts escapes every value). One stylesheet and one script,
// both served as files (the Content-Security-Policy allows no inline script); no CDN, no build step.
import type { CoreV1Event, V1Container, V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { Diagnosis, Link } from "../driver/doctor/engine.ts";
import { labels } from "../driver/juicefs/index.ts";
import type { ClusterObjects } from "./cache.ts";
import { type RowVerdicts, renderGraph, volumeGraph } from "./graph.ts";
import type { Health } from "./health.ts";
import { html, type Safe } from "./html.ts";
import { isMountPod, isReady, type Overview, type Problem, restarts, type VolumeIndex } from "./model.ts";

export function layout(title: string, body: Safe, o: { generation?: number; live?: boolean } = {}): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · JuiceFS CSI</title><link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script></head>
<body${o.live ? html` data-live="1" data-generation="${o.generation ?? 0}"` : ""}>
<header><nav><a href="/" class="brand">JuiceFS CSI dashboard</a><a href="/health">Driver health</a></nav><span class="live" id="live"></span></header>
<main id="main">${body}</main></body></html>`.value;
}

const verdictBadge = (v: string) => html`<span class="badge verdict-${v}">${v}</span>`;

function problemRow(p: Problem): Safe {
  return html`<tr class="problem verdict-${p.verdict}">
<td>${verdictBadge(p.verdict)}</td>
<td>${p.href ? html`<a href="${p.href}">${p.object}</a>` : p.object}</td>
<td><code>${p.code}</code></td>
<td class="summary">${p.summary}${p.why ? html`<div class="why">${p.why}</div>` : ""}</td>
<td class="fix">${p.fix ? html`<code>${p.fix}</code>` : ""}</td></tr>`;
}

export function overviewPage(ov: Overview, idx: VolumeIndex): Safe {
  const c = ov.counts;
  const groupTable = (
    title: string,
    rows: Overview["perNode"],
    first: string,
  ) => html`<section><h2>${title}</h2>
<table><thead><tr><th>${first}</th><th>PVs</th><th>PVCs</th><th>App pods</th><th>Mount Pods</th><th>Sidecars</th><th>Unhealthy</th></tr></thead><tbody>
${rows.map(
  (g) =>
    html`<tr${g.unhealthy ? html` class="unhealthy"` : ""}><td>${g.name}</td><td>${g.pvs}</td><td>${g.pvcs}</td><td>${g.appPods}</td><td>${g.mountPods}</td><td>${g.sidecars}</td><td>${g.unhealthy}</td></tr>`,
)}</tbody></table></section>`;
  const volumes = idx.pvs.map((pv) => {
    const name = pv.metadata?.name ?? "";
    const claim = idx.claimOfPv.get(name);
    return html`<tr><td><a href="/volumes/${encodeURIComponent(name)}">${name}</a></td><td>${pv.spec?.storageClassName || "(static)"}</td><td>${claim ?? ""}</td><td>${claim ? (idx.podsOfClaim.get(claim)?.length ?? 0) : 0}</td><td>${idx.mountPodsOf(pv).length}</td></tr>`;
  });
  return html`<h1>Overview</h1>
<p class="counts"><span><b>${c.pvs}</b> PVs</span><span><b>${c.pvcs}</b> PVCs</span><span><b>${c.appPods}</b> app pods</span><span><b>${c.mountPods}</b> Mount Pods</span><span><b>${c.sidecars}</b> pods with sidecars</span><span class="${ov.problems.length ? "bad" : "good"}"><b>${ov.problems.length}</b> of ${ov.checked} need attention</span></p>
${ov.failures.map((f) => html`<p class="failure">Could not read ${f.what}: ${f.message}</p>`)}
<section><h2>Needs attention</h2>
${
  ov.problems.length
    ? html`<table class="problems"><thead><tr><th>Verdict</th><th>Object</th><th>Code</th><th>Finding</th><th>Fix</th></tr></thead><tbody>${ov.problems.map(problemRow)}</tbody></table>`
    : html`<p class="good">All ${ov.checked} JuiceFS pods, claims and Mount Pods look healthy.</p>`
}</section>
${groupTable("Per node", ov.perNode, "Node")}
${groupTable("Per StorageClass", ov.perStorageClass, "StorageClass")}
<section><h2>Volumes</h2><table><thead><tr><th>PV</th><th>StorageClass</th><th>Claim</th><th>App pods</th><th>Mount Pods</th></tr></thead><tbody>${volumes}</tbody></table></section>
<section><h2>Driver</h2><table><thead><tr><th>Pod</th><th>Component</th><th>Node</th><th>Ready</th><th>Restarts</th></tr></thead><tbody>
${ov.driver.map(
  (d) =>
    html`<tr${d.ready ? "" : html` class="unhealthy"`}><td><a href="/pods/${encodeURIComponent(d.namespace)}/${encodeURIComponent(d.name)}">${d.name}</a></td><td>${d.component}</td><td>${d.node}</td><td>${d.ready ? "yes" : "no"}</td><td>${d.restarts}</td></tr>`,
)}</tbody></table></section>
<p class="taken">As of ${ov.takenAt}.</p>`;
}

function chain(d: Diagnosis): Safe {
  const row = (l: Link) =>
    html`<tr class="link verdict-${l.verdict}"><td>${verdictBadge(l.verdict)}</td><td>${l.id}</td><td>${l.object}</td><td>${l.summary}</td></tr>`;
  const b = d.firstBroken;
  return html`<section class="diagnosis"><h2>Doctor</h2>
${
  b
    ? html`<div class="first-broken verdict-broken"><p><b>First broken link:</b> ${b.id} (${b.object}) <code>${b.code}</code></p><p>${b.summary}</p>${b.why ? html`<p class="why">why: ${b.why}</p>` : ""}${b.fix ? html`<p class="fix">fix: <code>${b.fix}</code></p>` : ""}${(b.evidence ?? []).length ? html`<pre class="evidence">${(b.evidence ?? []).join("\n")}</pre>` : ""}</div>`
    : html`<p class="good">No broken link found.</p>`
}
<table><tbody>${d.links.map(row)}</tbody></table></section>`;
}

export function volumePage(
  idx: VolumeIndex,
  pvName: string,
  d: Diagnosis,
  rows?: RowVerdicts,
): Safe | undefined {
  const g = volumeGraph(idx, pvName, d, rows);
  if (!g) return undefined;
  return html`<h1>Volume ${pvName}</h1>
<p class="legend"><span class="badge verdict-ok">ok</span><span class="badge verdict-warning">warning</span><span class="badge verdict-broken">broken</span><span class="badge verdict-unknown">unknown</span></p>
<div class="graph-wrap">${renderGraph(g)}</div>
${chain(d)}`;
}

function eventsTable(events: readonly CoreV1Event[]): Safe {
  if (!events.length) return html`<p>No events.</p>`;
  return html`<table class="events"><thead><tr><th>Type</th><th>Reason</th><th>Message</th><th>Count</th><th>Last seen</th></tr></thead><tbody>
${events.map(
  (e) =>
    html`<tr class="${e.type === "Warning" ? "unhealthy" : ""}"><td>${e.type ?? ""}</td><td>${e.reason ?? ""}</td><td>${e.message ?? ""}</td><td>${e.count ?? 1}</td><td>${String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? "")}</td></tr>`,
)}</tbody></table>`;
}

function containerRow(c: V1Container, s: V1ContainerStatus | undefined): Safe {
  const state = s?.state?.running
    ? "Running"
    : s?.state?.waiting
      ? `Waiting: ${s.state.waiting.reason ?? ""}`
      : s?.state?.terminated
        ? `Terminated: ${s.state.terminated.reason ?? ""} (exit ${s.state.terminated.exitCode})`
        : "unknown";
  const last = s?.lastState?.terminated;
  const res = c.resources ?? {};
  const fmt = (m?: Record<string, string>) =>
    m
      ? Object.entries(m)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")
      : "";
  return html`<tr><td>${c.name}</td><td><code>${c.image ?? ""}</code></td><td>${state}</td><td>${s?.ready ? "yes" : "no"}</td><td>${s?.restartCount ?? 0}</td>
<td>${last ? `${last.reason ?? ""} exit ${last.exitCode} at ${String(last.finishedAt ?? "")}` : ""}</td>
<td>${fmt(res.requests)}</td><td>${fmt(res.limits)}</td></tr>`;
}

/** What the page shows of a pod: never env values, args or commands (a client's may carry a meta URL). */
export function podPage(
  o: ClusterObjects,
  idx: VolumeIndex,
  pod: V1Pod,
  d: Diagnosis | undefined,
  problem: Problem | undefined,
): Safe {
  const ns = pod.metadata?.namespace ?? "";
  const name = pod.metadata?.name ?? "";
  const mount = isMountPod(pod);
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const events = o.events
    .filter(
      (e) =>
        e.involvedObject?.kind === "Pod" &&
        e.involvedObject?.name === name &&
        (e.involvedObject?.namespace ?? e.metadata?.namespace) === ns,
    )
    .slice(-50);
  let settings: Safe = html``;
  let serves: Safe = html``;
  if (mount) {
    const pv = idx.pvOfMountPod(pod);
    const sc = o.storageClasses.find((s) => s.metadata?.name === pv?.spec?.storageClassName);
    const opts = [...(pv?.spec?.mountOptions ?? []), ...(sc?.mountOptions ?? [])];
    const cacheDirs = (pod.spec?.volumes ?? [])
      .filter((v) => v.name.startsWith("jfs-cache-") && v.hostPath)
      .map((v) => v.hostPath!.path);
    settings = html`<section><h2>Settings</h2><dl>
<dt>Volume</dt><dd>${pv ? html`<a href="/volumes/${encodeURIComponent(pv.metadata?.name ?? "")}">${pv.metadata?.name}</a>` : pod.metadata?.labels?.[labels.volumeId]}</dd>
<dt>Mount options</dt><dd>${opts.length ? opts.map((x) => html`<code>${x}</code> `) : "(none)"}</dd>
<dt>Cache dirs</dt><dd>${cacheDirs.length ? cacheDirs.map((x) => html`<code>${x}</code> `) : "(default)"}</dd>
<dt>Settings hash</dt><dd><code>${pod.metadata?.labels?.[labels.settingsHash] ?? ""}</code></dd>
</dl></section>`;
    const claim = pv ? idx.claimOfPv.get(pv.metadata?.name ?? "") : undefined;
    const served = claim
      ? (idx.podsOfClaim.get(claim) ?? []).filter((p) => p.spec?.nodeName === pod.spec?.nodeName)
      : [];
    serves = html`<section><h2>Serves</h2>${
      served.length
        ? html`<ul>${served.map((p) => html`<li><a href="/pods/${encodeURIComponent(p.metadata?.namespace ?? "")}/${encodeURIComponent(p.metadata?.name ?? "")}">${p.metadata?.namespace}/${p.metadata?.name}</a> (claim ${claim})</li>`)}</ul>`
        : html`<p>No app pod on this node uses the volume.</p>`
    }</section>`;
  } else {
    const claims = (pod.spec?.volumes ?? []).filter((v) => v.persistentVolumeClaim);
    settings = html`<section><h2>Volumes</h2><ul>${claims.map((v) => {
      const c = idx.pvcByKey.get(`${ns}/${v.persistentVolumeClaim!.claimName}`);
      const pv = c?.spec?.volumeName;
      return html`<li>${v.name}: claim ${v.persistentVolumeClaim!.claimName}${pv ? html` → <a href="/volumes/${encodeURIComponent(pv)}">${pv}</a>` : ""}</li>`;
    })}</ul></section>`;
  }
  const containerNames = containers.map((c) => c.name);
  return html`<h1>${mount ? "Mount Pod" : "Pod"} ${ns}/${name}</h1>
<p class="status"><span>${pod.status?.phase ?? "Pending"}${pod.metadata?.deletionTimestamp ? " (Terminating)" : ""}</span><span>node ${pod.spec?.nodeName ?? "(none)"}</span><span>${isReady(pod) ? "ready" : "not ready"}</span><span>${restarts(pod)} restart(s)</span></p>
${problem ? html`<div class="first-broken verdict-${problem.verdict}"><p><b>${problem.verdict}:</b> <code>${problem.code}</code> ${problem.summary}</p>${problem.why ? html`<p class="why">why: ${problem.why}</p>` : ""}${problem.fix ? html`<p class="fix">fix: <code>${problem.fix}</code></p>` : ""}</div>` : ""}
${d ? chain(d) : ""}
<section><h2>Containers</h2><table><thead><tr><th>Name</th><th>Image</th><th>State</th><th>Ready</th><th>Restarts</th><th>Last termination</th><th>Requests</th><th>Limits</th></tr></thead><tbody>
${containers.map((c) =>
  containerRow(
    c,
    statuses.find((s) => s.name === c.name),
  ),
)}</tbody></table></section>
${settings}${serves}
<section><h2>Events</h2>${eventsTable(events)}</section>
<section class="logs"><h2>Logs</h2>
<form id="log-form" data-namespace="${ns}" data-name="${name}">
<label>Container <select name="container">${containerNames.map((c) => html`<option>${c}</option>`)}</select></label>
<label><input type="checkbox" name="previous" value="1"> previous instance</label>
<label><input type="checkbox" name="follow" value="1" checked> follow</label>
<button type="submit">Show</button></form>
<pre id="log" aria-live="polite"></pre></section>`;
}

export function notFound(what: string): Safe {
  return html`<h1>Not found</h1><p>${what} is not in the cluster (or not yet in the dashboard's cache).</p><p><a href="/">Overview</a></p>`;
}

export function healthPage(h: Health): Safe {
  const yes = (b: boolean) => (b ? "yes" : "no");
  return html`<h1>Driver health</h1>
<p class="counts"><span><b>${h.mountPods.total}</b> Mount Pods</span><span><b>${h.mountPods.ready}</b> ready</span><span class="${h.mountPods.restarting ? "bad" : ""}"><b>${h.mountPods.restarting}</b> restarted</span><span class="${h.refusals.length ? "bad" : ""}"><b>${h.refusals.length}</b> recent webhook refusals</span></p>
<section><h2>Node plugins</h2><table class="nodes"><thead><tr><th>Node</th><th>Plugin pod</th><th>Ready</th><th>Restarts</th><th>Last termination</th><th>Registered (CSINode)</th><th>Mount Pods</th><th>Not ready</th></tr></thead><tbody>
${h.nodes.map(
  (n) =>
    html`<tr${!n.plugin?.ready || !n.registered ? html` class="unhealthy"` : ""}><td>${n.node}</td><td>${n.plugin ? html`<a href="/pods/${encodeURIComponent(n.plugin.namespace)}/${encodeURIComponent(n.plugin.name)}">${n.plugin.name}</a>` : "(none)"}</td><td>${n.plugin ? yes(n.plugin.ready) : ""}</td><td>${n.plugin?.restarts ?? ""}</td><td>${n.plugin?.lastTermination ?? ""}</td><td>${yes(n.registered)}</td><td>${n.mountPods}</td><td>${n.mountPodsNotReady}</td></tr>`,
)}</tbody></table></section>
<section><h2>Controller and webhook</h2><table><thead><tr><th>Pod</th><th>Component</th><th>Node</th><th>Ready</th><th>Restarts</th><th>Last termination</th></tr></thead><tbody>
${h.pods.map(
  (p) =>
    html`<tr${p.ready ? "" : html` class="unhealthy"`}><td><a href="/pods/${encodeURIComponent(p.namespace)}/${encodeURIComponent(p.name)}">${p.name}</a></td><td>${p.component}</td><td>${p.node}</td><td>${yes(p.ready)}</td><td>${p.restarts}</td><td>${p.lastTermination ?? ""}</td></tr>`,
)}</tbody></table></section>
<section><h2>Webhook configurations</h2>${
    h.webhooks.length
      ? html`<table class="webhooks"><thead><tr><th>Configuration</th><th>Webhook</th><th>Failure policy</th><th>Target</th><th>Timeout</th><th>CA bundle</th></tr></thead><tbody>
${h.webhooks.map(
  (w) =>
    html`<tr${w.caProblem || (w.ca && w.ca.daysLeft < 30) ? html` class="unhealthy"` : ""}><td>${w.kind} ${w.configuration}</td><td>${w.webhook}</td><td>${w.failurePolicy}</td><td>${w.target}</td><td>${w.timeoutSeconds !== undefined ? `${w.timeoutSeconds} s` : ""}</td><td class="ca">${w.ca ? `${w.ca.subject}: expires ${w.ca.notAfter} (${w.ca.daysLeft < 0 ? "expired" : `${w.ca.daysLeft} days left`})` : w.caProblem}</td></tr>`,
)}</tbody></table>`
      : html`<p>No JuiceFS webhook configuration.</p>`
  }</section>
<section><h2>Recent refusals</h2>${
    h.refusals.length
      ? html`<table class="refusals"><thead><tr><th>Namespace</th><th>Object</th><th>Message</th><th>Count</th><th>Last seen</th></tr></thead><tbody>
${h.refusals.map((r) => html`<tr><td>${r.namespace}</td><td>${r.object}</td><td>${r.message}</td><td>${r.count}</td><td>${r.last}</td></tr>`)}</tbody></table>`
      : html`<p>No pod refused by the JuiceFS webhook recently (FailedCreate events).</p>`
  }</section>
<p class="taken">Metrics: the webhook and node plugins serve <code>/metrics</code> (ports 9443 and 9568); this dashboard's are at <a href="/metrics">/metrics</a>.</p>`;
}
