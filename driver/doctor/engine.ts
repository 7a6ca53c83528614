// The doctor's judgement: a Snapshot in, the chain of links with a verdict each out. Pure (no API, no
// clock but the snapshot's), so the CLI, the support bundle and a dashboard share it.
//
// The chain follows the split of the reference troubleshooting guide: a volume that is not created
// (the controller's side: PVC Pending → StorageClass, provisioner) and a pod that does not start
// (the node's side: node plugin, CSINode registration, Mount Pod or sidecar, the mount itself), plus
// the admission webhook that may have refused or skipped the pod.
import type {
  CoreV1Event,
  V1Container,
  V1ContainerStatus,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1StorageClass,
} from "@kubernetes/client-node";
import { globalConfigDigestAnnotation, patchDigest } from "../juicefs/global-config.ts";
import {
  driverName,
  globalConfigName,
  keys,
  labels,
  labelValue,
  mergePatches,
  mountPointAnnotation,
  patchNeeds,
  volumeIdLabelValue,
} from "../juicefs/index.ts";
import { injectedClaims, sidecarClientContainers } from "../juicefs/injected.ts";
import { isJuiceFSVolume, publishSecretRef, type Snapshot, type Target } from "./snapshot.ts";

export type Verdict = "ok" | "broken" | "warning" | "unknown" | "skipped";

export type LinkId =
  | "pod"
  | "pvc"
  | "storageclass"
  | "pv"
  | "secret"
  | "settings"
  | "node-plugin"
  | "csinode"
  | "mount-pod"
  | "sidecar"
  | "mount"
  | "webhook";

export interface Link {
  id: LinkId;
  /** The object, as kubectl takes it: `pvc/data -n default`, `pv/pvc-123`, `csinode/node-1`. */
  object: string;
  verdict: Verdict;
  /** Stable machine name of the finding (e.g. `secret-missing`, `mount-pod-oomkilled`). */
  code: string;
  /** One line: what was found. */
  summary: string;
  /** Why it breaks the chain (absent when ok). */
  why?: string;
  /** What to do, with commands users can paste. */
  fix?: string;
  /** Supporting lines: event messages, last log lines. */
  evidence?: string[];
}

export interface Diagnosis {
  /** The target as kubectl takes it. */
  target: string;
  healthy: boolean;
  links: Link[];
  /** The first link whose verdict is broken. */
  firstBroken?: Link;
}

/** The chain for the snapshot's target. */
export function diagnose(s: Snapshot): Diagnosis {
  const links: Link[] = [];
  const ctx = new Context(s);
  const t = s.target;
  if (t.kind === "pod") {
    const pod = ctx.pod(t.namespace ?? "default", t.name);
    links.push(podLink(ctx, t, pod));
    if (pod) {
      const claims = juicefsClaims(ctx, pod);
      if (claims.length === 0 && !links.some((l) => l.verdict === "broken"))
        links.push({
          id: "pvc",
          object: ref("pod", t.name, t.namespace),
          verdict: "skipped",
          code: "no-juicefs-volume",
          summary: "the pod uses no claim bound to a csi.juicefs.com volume",
        });
      for (const claim of claims) links.push(...claimChain(ctx, claim, pod));
    }
  } else if (t.kind === "pvc") {
    links.push(...claimChain(ctx, t.name, undefined, t.namespace ?? "default"));
  } else {
    const pv = s.pvs.find((p) => p.metadata?.name === t.name);
    if (!pv)
      links.push(missing("pv", ref("pv", t.name), "pv-missing", `PersistentVolume ${t.name} not found`));
    else {
      const claim = pv.spec?.claimRef;
      if (claim?.name && claim.namespace)
        links.push(...claimChain(ctx, claim.name, undefined, claim.namespace));
      else links.push(...volumeChain(ctx, pv, undefined, []));
    }
  }
  const unique = dedupe(links);
  const firstBroken = unique.find((l) => l.verdict === "broken");
  return {
    target: ref(t.kind, t.name, t.namespace),
    healthy: !firstBroken,
    links: unique,
    ...(firstBroken ? { firstBroken } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------

class Context {
  readonly s: Snapshot;
  readonly now: number;
  constructor(s: Snapshot) {
    this.s = s;
    this.now = Date.parse(s.takenAt);
  }
  pod(ns: string, name: string): V1Pod | undefined {
    return this.s.pods.find((p) => p.metadata?.namespace === ns && p.metadata?.name === name);
  }
  pvc(ns: string, name: string): V1PersistentVolumeClaim | undefined {
    return this.s.pvcs.find((p) => p.metadata?.namespace === ns && p.metadata?.name === name);
  }
  pv(name: string | undefined): V1PersistentVolume | undefined {
    return name ? this.s.pvs.find((p) => p.metadata?.name === name) : undefined;
  }
  sc(name: string | undefined): V1StorageClass | undefined {
    return name ? this.s.storageClasses.find((c) => c.metadata?.name === name) : undefined;
  }
  defaultSc(): V1StorageClass | undefined {
    return this.s.storageClasses.find(
      (c) => c.metadata?.annotations?.["storageclass.kubernetes.io/is-default-class"] === "true",
    );
  }
  /** Events about one object, newest first. */
  events(kind: string, ns: string | undefined, name: string): CoreV1Event[] {
    return this.s.events
      .filter(
        (e) =>
          e.involvedObject?.kind === kind &&
          e.involvedObject?.name === name &&
          (ns === undefined || (e.involvedObject?.namespace ?? e.metadata?.namespace) === ns),
      )
      .sort((a, b) => eventTime(b) - eventTime(a));
  }
  failed(what: string): string | undefined {
    return this.s.failures.find((f) => f.what === what)?.message;
  }
  driverPods(component: string): V1Pod[] {
    return this.s.driverPods.filter((p) => p.metadata?.labels?.["app.kubernetes.io/component"] === component);
  }
  get mode(): "pod" | "process" | "sidecar" {
    return this.s.mountMode ?? "pod";
  }
}

const eventTime = (e: CoreV1Event): number =>
  Date.parse(
    String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? 0),
  ) || 0;

/** `kind/name -n ns` as kubectl takes it. */
export function ref(kind: string, name: string, namespace?: string): string {
  return namespace ? `${kind}/${name} -n ${namespace}` : `${kind}/${name}`;
}

function missing(id: LinkId, object: string, code: string, summary: string, fix?: string): Link {
  return { id, object, verdict: "broken", code, summary, why: summary, ...(fix ? { fix } : {}) };
}

function dedupe(links: Link[]): Link[] {
  const seen = new Set<string>();
  return links.filter((l) => {
    const k = `${l.id} ${l.object} ${l.code}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Claims of the pod that are (or will be) JuiceFS volumes, plus claims we cannot judge yet. */
function juicefsClaims(ctx: Context, pod: V1Pod): string[] {
  const ns = pod.metadata?.namespace ?? "default";
  const out: string[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    const name =
      v.persistentVolumeClaim?.claimName ?? (v.ephemeral ? `${pod.metadata?.name}-${v.name}` : undefined);
    if (!name) continue;
    const pvc = ctx.pvc(ns, name);
    if (!pvc) {
      out.push(name);
      continue;
    }
    const pv = ctx.pv(pvc.spec?.volumeName);
    if (pv) {
      if (isJuiceFSVolume(pv)) out.push(name);
      continue;
    }
    const sc =
      ctx.sc(pvc.spec?.storageClassName) ?? (pvc.spec?.storageClassName ? undefined : ctx.defaultSc());
    // Unbound: ours if its StorageClass is ours, or if we cannot tell (missing StorageClass).
    if (!sc || sc.provisioner === driverName) out.push(name);
  }
  // Sidecar mode: the claims the webhook replaced by emptyDirs, from its record on the pod.
  for (const name of injectedClaims(pod)) if (!out.includes(name)) out.push(name);
  return out;
}

// ---- the application pod ----

function podLink(ctx: Context, t: Target, pod: V1Pod | undefined): Link {
  const object = ref("pod", t.name, t.namespace);
  if (!pod) {
    const denial = webhookDenial(ctx, t.namespace ?? "default", t.name);
    if (denial) return denial;
    return missing(
      "pod",
      object,
      "pod-missing",
      `pod ${t.namespace}/${t.name} not found`,
      `kubectl get pods -n ${t.namespace}`,
    );
  }
  const phase = pod.status?.phase ?? "Pending";
  if (pod.metadata?.deletionTimestamp) {
    const due = Date.parse(String(pod.metadata.deletionTimestamp));
    const overdue = ctx.now - due;
    const unmount = ctx
      .events("Pod", t.namespace, t.name)
      .filter((e) => e.reason === "FailedUnMount" || /UnmountVolume\.TearDown failed/.test(e.message ?? ""));
    if (overdue > 0 || unmount.length) {
      return {
        id: "pod",
        object,
        verdict: "broken",
        code: "pod-stuck-terminating",
        summary: `Terminating for ${Math.max(0, Math.round(overdue / 1000))}s past its grace period`,
        why: unmount.length
          ? "the kubelet cannot unmount a volume, so it cannot finish deleting the pod"
          : "the kubelet on the node has not confirmed the deletion (is the node or its kubelet down?)",
        fix: unmount.length
          ? `kubectl logs -n <driver-namespace> <node-plugin-pod> -c juicefs-plugin on node ${pod.spec?.nodeName}; once the mount is gone the pod finishes. Last resort: kubectl delete ${object} --grace-period=0 --force`
          : `kubectl get node ${pod.spec?.nodeName}`,
        evidence: unmount.slice(0, 3).map(eventLine),
      };
    }
    return {
      id: "pod",
      object,
      verdict: "warning",
      code: "pod-terminating",
      summary: "Terminating (within its grace period)",
    };
  }
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
  if (phase === "Running" && ready)
    return {
      id: "pod",
      object,
      verdict: "ok",
      code: "pod-running",
      summary: `Running on ${pod.spec?.nodeName}`,
    };
  if (phase === "Succeeded")
    return { id: "pod", object, verdict: "ok", code: "pod-succeeded", summary: "Succeeded" };
  const waiting = [...(pod.status?.containerStatuses ?? [])]
    .map((c) => c.state?.waiting?.reason)
    .find(Boolean);
  const sched = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  if (sched)
    return {
      id: "pod",
      object,
      verdict: "warning",
      code: "pod-unschedulable",
      summary: `Pending, not scheduled: ${sched.message ?? sched.reason ?? ""}`.trim(),
    };
  // Pending/not ready: the verdict comes from the links below (volume, Mount Pod, mount).
  return {
    id: "pod",
    object,
    verdict: "warning",
    code: "pod-not-ready",
    summary: `${phase}${waiting ? ` (${waiting})` : ""}${pod.spec?.nodeName ? ` on ${pod.spec.nodeName}` : ""}`,
  };
}

/** A FailedCreate event of a controller in the namespace, refused by one of our webhooks, about this pod or claim. */
function webhookDenial(ctx: Context, ns: string, name: string, claim?: string): Link | undefined {
  const e = ctx.s.events
    .filter(
      (e) =>
        (e.involvedObject?.namespace ?? e.metadata?.namespace) === ns &&
        e.reason === "FailedCreate" &&
        /admission webhook "[^"]*juicefs[^"]*" denied the request/.test(e.message ?? "") &&
        (claim ? (e.message ?? "").includes(claim) : (e.message ?? "").includes(name) || name.length > 0),
    )
    .sort((a, b) => eventTime(b) - eventTime(a))[0];
  if (!e) return undefined;
  const owner = `${(e.involvedObject?.kind ?? "").toLowerCase()}/${e.involvedObject?.name}`;
  const why = (e.message ?? "").replace(/^Error creating: /, "");
  return {
    id: "webhook",
    object: ref(owner.split("/")[0] ?? "", e.involvedObject?.name ?? "", ns),
    verdict: "broken",
    code: "webhook-denied",
    summary: `the JuiceFS admission webhook refused the pod of ${owner}`,
    why,
    fix: "fix the field the message names (juicefs-csi validate -f <manifests> checks it offline); the controller retries on its own",
    evidence: [eventLine(e)],
  };
}

// ---- claim → volume ----

function claimChain(ctx: Context, claimName: string, pod: V1Pod | undefined, namespace?: string): Link[] {
  const ns = namespace ?? pod?.metadata?.namespace ?? "default";
  const object = ref("pvc", claimName, ns);
  const pvc = ctx.pvc(ns, claimName);
  const out: Link[] = [];
  if (!pvc) {
    if (ctx.failed("pvcs")) return [unknownLink("pvc", object, ctx.failed("pvcs")!)];
    return [
      missing(
        "pvc",
        object,
        "pvc-missing",
        `PersistentVolumeClaim ${ns}/${claimName} not found`,
        `create it, or fix claimName in the pod (kubectl get pvc -n ${ns})`,
      ),
    ];
  }
  const scName = pvc.spec?.storageClassName ?? ctx.defaultSc()?.metadata?.name;
  const sc = ctx.sc(scName);
  const phase = pvc.status?.phase ?? "Pending";
  if (phase === "Bound") {
    out.push({
      id: "pvc",
      object,
      verdict: "ok",
      code: "pvc-bound",
      summary: `Bound to ${pvc.spec?.volumeName}`,
    });
    const pv = ctx.pv(pvc.spec?.volumeName);
    if (!pv) {
      out.push(
        missing(
          "pv",
          ref("pv", pvc.spec?.volumeName ?? ""),
          "pv-missing",
          `PersistentVolume ${pvc.spec?.volumeName} (the claim's volumeName) not found`,
        ),
      );
      return out;
    }
    out.push(...volumeChain(ctx, pv, pvc, pod ? [pod] : podsUsing(ctx, ns, claimName)));
    return out;
  }
  if (phase === "Lost")
    return [
      {
        id: "pvc",
        object,
        verdict: "broken",
        code: "pvc-lost",
        summary: `Lost: its PersistentVolume ${pvc.spec?.volumeName} is gone`,
        why: "a Lost claim never binds again",
        fix: `recreate the PV ${pvc.spec?.volumeName} (static) or the claim (dynamic)`,
      },
    ];
  // Pending: the controller's side.
  out.push(...pendingClaim(ctx, pvc, scName, sc, pod ? [pod] : podsUsing(ctx, ns, claimName)));
  return out;
}

function podsUsing(ctx: Context, ns: string, claim: string): V1Pod[] {
  return ctx.s.pods.filter(
    (p) =>
      p.metadata?.namespace === ns &&
      (p.spec?.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === claim),
  );
}

function pendingClaim(
  ctx: Context,
  pvc: V1PersistentVolumeClaim,
  scName: string | undefined,
  sc: V1StorageClass | undefined,
  pods: V1Pod[],
): Link[] {
  const ns = pvc.metadata?.namespace ?? "default";
  const name = pvc.metadata?.name ?? "";
  const object = ref("pvc", name, ns);
  const events = ctx.events("PersistentVolumeClaim", ns, name).filter((e) => e.type === "Warning");
  const evidence = events.slice(0, 3).map(eventLine);
  const pending = (
    code: string,
    summary: string,
    why: string,
    fix: string,
    verdict: Verdict = "broken",
  ): Link => ({
    id: "pvc",
    object,
    verdict,
    code,
    summary,
    why,
    fix,
    ...(evidence.length ? { evidence } : {}),
  });
  if (pvc.spec?.volumeName) {
    const pv = ctx.pv(pvc.spec.volumeName);
    if (!pv)
      return [
        pending(
          "pv-missing",
          `Pending: it asks for PersistentVolume ${pvc.spec.volumeName}, which does not exist`,
          "a claim with spec.volumeName binds only to that PV",
          `create the PV ${pvc.spec.volumeName} (see examples/pv.yaml) or drop volumeName`,
        ),
      ];
    const why = bindMismatch(pvc, pv);
    return [
      pending(
        "pv-not-bindable",
        `Pending: PersistentVolume ${pvc.spec.volumeName} does not bind to it`,
        why,
        `kubectl describe pv ${pvc.spec.volumeName}`,
      ),
    ];
  }
  if (!scName)
    return [
      pending(
        "no-storageclass",
        "Pending: no storageClassName and no default StorageClass",
        "nothing provisions a volume for it and no PV names it",
        `set spec.storageClassName to a StorageClass of provisioner ${driverName}, or create a PV for it`,
      ),
    ];
  const scObject = ref("storageclass", scName);
  if (!sc) {
    if (ctx.failed("storageclasses"))
      return [
        pending(
          "pvc-pending",
          "Pending",
          "cannot read StorageClasses",
          "ask for read access to StorageClasses",
          "unknown",
        ),
      ];
    const ours = ctx.s.storageClasses
      .filter((c) => c.provisioner === driverName)
      .map((c) => c.metadata?.name)
      .join(", ");
    return [
      pending(
        "storageclass-missing",
        `Pending: StorageClass ${scName} does not exist`,
        "a claim of a StorageClass that does not exist is never provisioned",
        ours
          ? `use one of the JuiceFS StorageClasses: ${ours} (storageClassName is immutable: recreate the claim)`
          : `create StorageClass ${scName} with provisioner ${driverName} (chart value storageClasses)`,
      ),
    ];
  }
  if (sc.provisioner !== driverName)
    return [
      pending(
        "storageclass-other-driver",
        `Pending: StorageClass ${scName} is provisioned by ${sc.provisioner}, not ${driverName}`,
        "this claim is not a JuiceFS volume; its provisioner must serve it",
        `for JuiceFS use a StorageClass with provisioner ${driverName} (recreate the claim; storageClassName is immutable)`,
        "warning",
      ),
    ];
  const scLink: Link = {
    id: "storageclass",
    object: scObject,
    verdict: "ok",
    code: "storageclass-ok",
    summary: `provisioner ${driverName}, binding ${sc.volumeBindingMode ?? "Immediate"}`,
  };
  const selectedNode = pvc.metadata?.annotations?.["volume.kubernetes.io/selected-node"];
  if (sc.volumeBindingMode === "WaitForFirstConsumer" && !selectedNode) {
    const consumers = pods.filter((p) => !p.metadata?.deletionTimestamp);
    const unsched = consumers
      .map((p) => p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False"))
      .find(Boolean);
    return [
      scLink,
      consumers.length === 0
        ? pending(
            "waiting-for-first-consumer",
            "Pending: WaitForFirstConsumer, and no pod uses it yet",
            `StorageClass ${scName} provisions only once a pod that uses the claim is scheduled`,
            "create the pod that uses it; this is expected until then",
            "warning",
          )
        : pending(
            "waiting-for-first-consumer",
            `Pending: WaitForFirstConsumer, and its pod is not scheduled${unsched?.message ? `: ${unsched.message}` : ""}`,
            "the claim is provisioned after the scheduler picks a node for its pod",
            `kubectl describe ${ref("pod", consumers[0]!.metadata?.name ?? "", ns)}`,
          ),
    ];
  }
  const secretLinks = provisionerSecret(ctx, sc);
  if (secretLinks.some((l) => l.verdict === "broken"))
    return [
      scLink,
      ...secretLinks,
      pending(
        "pvc-pending",
        "Pending",
        "CreateVolume needs the provisioner Secret",
        secretLinks[0]!.fix ?? "",
      ),
    ];
  const controllers = ctx.driverPods("controller");
  const readyControllers = controllers.filter(isReady);
  if (!ctx.failed("driverPods") && readyControllers.length === 0)
    return [
      scLink,
      pending(
        "provisioner-down",
        controllers.length
          ? `Pending: no controller pod of the driver is ready (${controllers.map((p) => `${p.metadata?.name} ${podState(p)}`).join(", ")})`
          : `Pending: no controller of ${driverName} is running in the cluster`,
        "the controller (csi-provisioner + CreateVolume) creates the volume; without it the claim stays Pending",
        controllers.length
          ? `kubectl describe pod -n ${controllers[0]!.metadata?.namespace} ${controllers[0]!.metadata?.name}`
          : "install the chart with controller.enabled=true, or check the controller Deployment: kubectl get deploy -A -l app.kubernetes.io/component=controller",
      ),
    ];
  const failed = events.find((e) => e.reason === "ProvisioningFailed");
  if (failed)
    return [
      scLink,
      pending(
        "provisioning-failed",
        "Pending: provisioning failed",
        failed.message ?? "",
        `fix what the message names; logs: kubectl logs -n ${readyControllers[0]?.metadata?.namespace ?? "<driver-namespace>"} ${readyControllers[0]?.metadata?.name ?? "<controller-pod>"} -c juicefs-plugin`,
      ),
    ];
  return [
    scLink,
    pending(
      "pvc-provisioning",
      "Pending: being provisioned",
      "the provisioner has not created the volume yet",
      `watch: kubectl get ${object} -w`,
      "warning",
    ),
  ];
}

function bindMismatch(pvc: V1PersistentVolumeClaim, pv: V1PersistentVolume): string {
  const cr = pv.spec?.claimRef;
  if (cr?.name && (cr.name !== pvc.metadata?.name || cr.namespace !== pvc.metadata?.namespace))
    return `it is reserved for claim ${cr.namespace}/${cr.name} (spec.claimRef)`;
  if ((pv.spec?.storageClassName ?? "") !== (pvc.spec?.storageClassName ?? ""))
    return `storageClassName differs: PV "${pv.spec?.storageClassName ?? ""}", claim "${pvc.spec?.storageClassName ?? ""}"`;
  const modes = pvc.spec?.accessModes ?? [];
  if (!modes.every((m) => (pv.spec?.accessModes ?? []).includes(m)))
    return `access modes differ: PV ${JSON.stringify(pv.spec?.accessModes ?? [])}, claim ${JSON.stringify(modes)}`;
  return `PV phase ${pv.status?.phase ?? "unknown"}`;
}

function provisionerSecret(ctx: Context, sc: V1StorageClass): Link[] {
  const name = sc.parameters?.[keys.provisionerSecretName];
  if (!name || name.includes("${")) return [];
  const ns = sc.parameters?.[keys.provisionerSecretNamespace] ?? "default";
  const d = ctx.s.secrets.find((x) => x.namespace === ns && x.name === name);
  if (!d) return [];
  if (!d.found)
    return [
      missing(
        "secret",
        ref("secret", name, ns),
        "secret-missing",
        `Secret ${ns}/${name} (StorageClass ${sc.metadata?.name} ${keys.provisionerSecretName}) does not exist`,
        `kubectl create secret generic ${name} -n ${ns} --from-literal=name=<fs-name> --from-literal=metaurl=<meta-url> ...`,
      ),
    ];
  return [];
}

// ---- PV → Secret → settings → node → client → mount ----

function volumeChain(
  ctx: Context,
  pv: V1PersistentVolume,
  pvc: V1PersistentVolumeClaim | undefined,
  pods: V1Pod[],
): Link[] {
  const pvName = pv.metadata?.name ?? "";
  const object = ref("pv", pvName);
  const out: Link[] = [];
  const csi = pv.spec?.csi;
  if (!csi || csi.driver !== driverName) {
    out.push({
      id: "pv",
      object,
      verdict: "broken",
      code: "pv-other-driver",
      summary: `PersistentVolume ${pvName} is ${csi ? `a volume of ${csi.driver}` : "not a CSI volume"}, not ${driverName}`,
      why: "the JuiceFS driver never mounts it; its own driver does",
      fix: `for JuiceFS, bind the claim to a PV with spec.csi.driver: ${driverName}`,
    });
    return out;
  }
  out.push({
    id: "pv",
    object,
    verdict: "ok",
    code: "pv-ok",
    summary: `${driverName}, volumeHandle ${csi.volumeHandle}${pv.spec?.mountOptions?.length ? `, mountOptions ${pv.spec.mountOptions.join(",")}` : ""}`,
  });
  // Secret.
  const sref = publishSecretRef(pv);
  if (!sref) {
    out.push(
      missing(
        "secret",
        object,
        "secret-not-set",
        `PersistentVolume ${pvName} has no spec.csi.nodePublishSecretRef`,
        `set spec.csi.nodePublishSecretRef (static PV) or the StorageClass parameters ${keys.nodePublishSecretName}/${keys.nodePublishSecretNamespace}`,
      ),
    );
    return out;
  }
  const secretObject = ref("secret", sref.name, sref.namespace);
  const digest = ctx.s.secrets.find((d) => d.namespace === sref.namespace && d.name === sref.name);
  const check = ctx.s.settings.find((c) => c.volume === pvName);
  if (!digest) out.push(unknownLink("secret", secretObject, ctx.failed("secrets") ?? "not read"));
  else if (!digest.found) {
    out.push(
      missing(
        "secret",
        secretObject,
        "secret-missing",
        `Secret ${sref.namespace}/${sref.name} (spec.csi.nodePublishSecretRef of PersistentVolume ${pvName}) does not exist`,
        `kubectl create secret generic ${sref.name} -n ${sref.namespace} --from-literal=name=<fs-name> --from-literal=metaurl=<meta-url> (plus storage, bucket, access-key, secret-key)`,
      ),
    );
    return out;
  } else {
    const secretErrors = (check?.errors ?? []).filter((e) => e.field.startsWith("secret."));
    if (secretErrors.length)
      out.push({
        id: "secret",
        object: secretObject,
        verdict: "broken",
        code: secretErrors.some((e) => e.field === "secret.metaurl")
          ? "secret-metaurl-invalid"
          : "secret-invalid",
        summary: `keys ${digest.keys.join(", ") || "(none)"}; ${secretErrors.length} problem(s): ${secretErrors.map((e) => e.field.slice(7)).join(", ")}`,
        why: secretErrors.map((e) => e.message).join("; "),
        fix: `kubectl edit ${secretObject} (values are never shown here)`,
      });
    else
      out.push({
        id: "secret",
        object: secretObject,
        verdict: "ok",
        code: "secret-ok",
        summary: `keys ${digest.keys.join(", ")}`,
      });
  }
  // Settings (everything but the Secret): mount options, parameters, annotations.
  if (check) {
    const errs = check.errors.filter((e) => !e.field.startsWith("secret."));
    if (errs.length)
      out.push({
        id: "settings",
        object,
        verdict: "broken",
        code: errs.some((e) => /writeback|upload/.test(`${e.field} ${e.message}`))
          ? "mount-option-refused"
          : "settings-invalid",
        summary: `${errs.length} setting(s) refused: ${errs.map((e) => e.field).join(", ")}`,
        why: errs.map((e) => e.message).join("; "),
        fix: "fix the named field on the PV or StorageClass (mountOptions are immutable on a PV: recreate it); juicefs-csi validate -f <manifests> checks offline",
      });
    else
      out.push({
        id: "settings",
        object,
        verdict: check.warnings.length ? "warning" : "ok",
        code: check.warnings.length ? "settings-warnings" : "settings-ok",
        summary: check.warnings.length ? check.warnings.join("; ") : "settings valid",
      });
  }
  // The node side, per pod that uses it (or per Mount Pod when no pod does).
  const live = pods.filter((p) => p.spec?.nodeName);
  if (pods.length > 0 && live.length === 0)
    out.push({
      id: "node-plugin",
      object: ref("pod", pods[0]!.metadata?.name ?? "", pods[0]!.metadata?.namespace),
      verdict: "skipped",
      code: "pod-not-scheduled",
      summary: "the pod is not scheduled to a node yet",
    });
  for (const pod of live) out.push(...nodeChain(ctx, pv, pvc, pod));
  if (live.length === 0 && ctx.mode === "pod") out.push(...idleMountPods(ctx, pv));
  return out;
}

function nodeChain(
  ctx: Context,
  pv: V1PersistentVolume,
  pvc: V1PersistentVolumeClaim | undefined,
  pod: V1Pod,
): Link[] {
  const out: Link[] = [];
  const node = pod.spec?.nodeName ?? "";
  const mode = ctx.mode;
  if (mode === "sidecar") {
    out.push(...webhookChain(ctx, pod, pvc));
    if (out.some((l) => l.verdict === "broken")) return out;
    out.push(sidecarLink(ctx, pod));
    out.push(mountLink(ctx, pod, pv));
    return out;
  }
  // Node plugin on the pod's node.
  const plugins = ctx.driverPods("node");
  const plugin = plugins.find((p) => p.spec?.nodeName === node && !p.metadata?.deletionTimestamp);
  const pluginObject = plugin
    ? ref("pod", plugin.metadata?.name ?? "", plugin.metadata?.namespace)
    : ref("node", node);
  if (ctx.failed("driverPods")) out.push(unknownLink("node-plugin", pluginObject, ctx.failed("driverPods")!));
  else if (!plugin)
    out.push(
      missing(
        "node-plugin",
        ref("node", node),
        "node-plugin-missing",
        `no node plugin pod of ${driverName} runs on node ${node}${plugins.length ? ` (it runs on ${plugins.length} other node(s))` : ""}`,
        plugins.length
          ? `the DaemonSet does not reach ${node}: compare its nodeSelector/tolerations with the node's labels and taints (kubectl get ds -n ${plugins[0]!.metadata?.namespace}; kubectl describe node ${node})`
          : "install the chart (mountMode pod or process), or check the node DaemonSet: kubectl get ds -A -l app.kubernetes.io/component=node",
      ),
    );
  else if (!isReady(plugin))
    out.push({
      id: "node-plugin",
      object: pluginObject,
      verdict: "broken",
      code: "node-plugin-not-ready",
      summary: `node plugin on ${node} is ${podState(plugin)}`,
      why: "kubelet calls NodePublishVolume on this node's plugin; it is not ready to answer",
      fix: `kubectl describe ${pluginObject}; kubectl logs ${pluginObject} -c juicefs-plugin`,
    });
  else
    out.push({
      id: "node-plugin",
      object: pluginObject,
      verdict: "ok",
      code: "node-plugin-ready",
      summary: `Running and ready on ${node}`,
    });
  // CSINode registration.
  const cn = ctx.s.csiNodes.find((c) => c.metadata?.name === node);
  const cnObject = ref("csinode", node);
  if (ctx.failed("csinodes")) out.push(unknownLink("csinode", cnObject, ctx.failed("csinodes")!));
  else if (!cn?.spec?.drivers?.some((d) => d.name === driverName))
    out.push({
      id: "csinode",
      object: cnObject,
      verdict: "broken",
      code: "csinode-driver-missing",
      summary: cn
        ? `CSINode ${node} lists ${cn.spec?.drivers?.map((d) => d.name).join(", ") || "no drivers"}, not ${driverName}`
        : `node ${node} has no CSINode object`,
      why: `the kubelet only calls drivers registered on its node; ${driverName} is not (the node-driver-registrar sidecar registers it)`,
      fix: plugin
        ? `kubectl logs ${ref("pod", plugin.metadata?.name ?? "", plugin.metadata?.namespace)} -c node-driver-registrar (the kubelet's plugin registration dir must match chart value kubeletDir)`
        : "start the node plugin on this node first",
    });
  else
    out.push({
      id: "csinode",
      object: cnObject,
      verdict: "ok",
      code: "csinode-registered",
      summary: `${driverName} registered`,
    });
  // The client.
  if (mode === "pod") out.push(mountPodLink(ctx, pv, pod));
  out.push(mountLink(ctx, pod, pv));
  if (ctx.s.webhooks.mutating.length || ctx.s.webhooks.validating.length)
    out.push(...webhookChain(ctx, pod, pvc));
  return out;
}

function mountPodsOf(ctx: Context, pv: V1PersistentVolume, node?: string): V1Pod[] {
  const vid = volumeIdLabelValue(pv.spec?.csi?.volumeHandle ?? "");
  return ctx.s.mountPods.filter(
    (p) =>
      p.metadata?.labels?.[labels.volumeId] === vid &&
      (node === undefined ||
        p.spec?.nodeName === node ||
        p.metadata?.labels?.[labels.nodeName] === labelValue(node)),
  );
}

function mountPodLink(ctx: Context, pv: V1PersistentVolume, pod: V1Pod): Link {
  const node = pod.spec?.nodeName ?? "";
  const candidates = mountPodsOf(ctx, pv, node);
  if (ctx.failed("mountPods")) return unknownLink("mount-pod", ref("node", node), ctx.failed("mountPods")!);
  const live = candidates.filter((p) => !p.metadata?.deletionTimestamp);
  const mp = live.find(isReady) ?? live[0] ?? candidates[0];
  if (!mp) {
    const running = pod.status?.phase === "Running";
    return {
      id: "mount-pod",
      object: ref("node", node),
      verdict: running ? "broken" : "warning",
      code: "mount-pod-missing",
      summary: `no Mount Pod of volume ${pv.spec?.csi?.volumeHandle} on node ${node}`,
      why: running
        ? "the pod runs but nothing serves its JuiceFS mount (the Mount Pod was deleted); the node plugin recreates it while the volume is in use"
        : "the node plugin creates it on the first NodePublishVolume; it has not yet",
      fix: "kubectl logs -n <driver-namespace> <node-plugin-pod> -c juicefs-plugin",
    };
  }
  const link = clientPodLink(ctx, mp, "mount-pod");
  return link.verdict === "ok" ? (globalConfigChanged(ctx, pv, mp, link) ?? link) : link;
}

/**
 * A Mount Pod of ours built under another global config patch than a new one would get now: it keeps
 * its settings until it is recreated (the ConfigMap is read only for new Mount Pods).
 */
function globalConfigChanged(ctx: Context, pv: V1PersistentVolume, mp: V1Pod, ok: Link): Link | undefined {
  const gc = ctx.s.globalConfig;
  const ann = mp.metadata?.annotations ?? {};
  // The reference driver's Mount Pods carry no digest of ours; an unreadable or invalid config proves nothing.
  if (!gc || gc.problem || !ann[mountPointAnnotation]) return undefined;
  const claim = pv.spec?.claimRef;
  const pvc = claim
    ? ctx.s.pvcs.find((c) => c.metadata?.namespace === claim.namespace && c.metadata?.name === claim.name)
    : undefined;
  const nodeName = mp.spec?.nodeName ?? "";
  const node = ctx.s.nodes?.find((n) => n.name === nodeName);
  if (gc.config && patchNeeds(gc.config).node && !node) return undefined;
  const now = mergePatches(gc.config, {
    ...(pvc?.metadata?.name
      ? {
          pvc: {
            name: pvc.metadata.name,
            labels: pvc.metadata.labels ?? {},
            ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
          },
        }
      : {}),
    ...(node ? { node: { labels: node.labels } } : {}),
  });
  const had = ann[globalConfigDigestAnnotation] ?? "none";
  if (patchDigest(now) === had) return undefined;
  const cm = `configmap/${globalConfigName} -n ${gc.namespace}`;
  const entries = now
    ? `mountPodPatch entries ${now.entries.join(", ")} apply now`
    : "no mountPodPatch entry applies now";
  return {
    ...ok,
    verdict: "warning",
    code: "mount-pod-global-config-changed",
    summary: `${ok.summary}; started under another global config than a new Mount Pod would get (${entries})`,
    why: `a running Mount Pod keeps the settings it started with: ${cm} is read for new Mount Pods only`,
    fix: `recreate the pods using ${claim?.name ? `pvc/${claim.name} -n ${claim.namespace}` : `pv/${pv.metadata?.name}`} on node ${nodeName} (the Mount Pod goes with its last pod; the next one gets the new config)`,
  };
}

/** Mount Pods of a volume no pod uses: leaving (delete delay), stuck Terminating, or leaked. */
function idleMountPods(ctx: Context, pv: V1PersistentVolume): Link[] {
  return mountPodsOf(ctx, pv).map((mp) => {
    const object = ref("pod", mp.metadata?.name ?? "", mp.metadata?.namespace);
    const delayMs = Number(mp.metadata?.annotations?.["juicefs.com/delete-delay-ms"] ?? 0);
    const delayed = ctx
      .events("Pod", mp.metadata?.namespace, mp.metadata?.name ?? "")
      .find((e) => e.reason === "DeleteDelayed");
    if (mp.metadata?.deletionTimestamp) {
      const overdue = ctx.now - Date.parse(String(mp.metadata.deletionTimestamp));
      return overdue > 0
        ? {
            id: "mount-pod" as const,
            object,
            verdict: "broken" as const,
            code: "mount-pod-stuck-terminating",
            summary: `Terminating for ${Math.round(overdue / 1000)}s past its grace period`,
            why: "its node's kubelet has not finished stopping it (node down, or the client hangs in unmount)",
            fix: `kubectl describe ${object}; kubectl get node ${mp.spec?.nodeName}`,
          }
        : {
            id: "mount-pod" as const,
            object,
            verdict: "ok" as const,
            code: "mount-pod-terminating",
            summary: "Terminating (no pod uses it)",
          };
    }
    if (delayMs > 0 || delayed)
      return {
        id: "mount-pod" as const,
        object,
        verdict: "ok" as const,
        code: "mount-pod-delete-delay",
        summary: `no pod uses it; waiting for its delete delay (${delayMs ? `${Math.round(delayMs / 1000)}s` : "juicefs/mount-delete-delay"}) before it is deleted`,
        ...(delayed ? { evidence: [eventLine(delayed)] } : {}),
      };
    return {
      id: "mount-pod" as const,
      object,
      verdict: "warning" as const,
      code: "mount-pod-unused",
      summary: "no pod on its node uses this volume, and no delete delay is set",
      why: "the node plugin deletes a Mount Pod at zero references; one left over means the plugin on that node is down or was restarted",
      fix: `kubectl logs -n ${mp.metadata?.namespace} <node-plugin-pod on ${mp.spec?.nodeName}> -c juicefs-plugin`,
    };
  });
}

/** A client pod (Mount Pod) or the sidecar container inside an app pod. */
function clientPodLink(ctx: Context, mp: V1Pod, id: "mount-pod" | "sidecar", containerName?: string): Link {
  const ns = mp.metadata?.namespace;
  const name = mp.metadata?.name ?? "";
  const object = ref("pod", name, ns);
  const statuses = [...(mp.status?.initContainerStatuses ?? []), ...(mp.status?.containerStatuses ?? [])];
  const cs = containerName
    ? statuses.find((c) => c.name === containerName)
    : mp.status?.containerStatuses?.[0];
  const cname = cs?.name ?? containerName ?? mp.spec?.containers?.[0]?.name ?? "";
  const logs = logTail(ctx, ns, name, cname);
  const events = ctx.events("Pod", ns, name).filter((e) => e.type === "Warning");
  const base = { id, object };
  const memLimit = (containerName ? findContainer(mp, containerName) : mp.spec?.containers?.[0])?.resources
    ?.limits?.memory;
  if (mp.metadata?.deletionTimestamp && id === "mount-pod")
    return {
      ...base,
      verdict: "broken",
      code: "mount-pod-terminating",
      summary: "the Mount Pod serving this pod is being deleted",
      why: "its mount goes away with it; the node plugin makes a new one for new publishes",
      fix: `kubectl describe ${object}`,
    };
  if (mp.status?.phase === "Failed" && /^OutOf/.test(mp.status?.reason ?? ""))
    return {
      ...base,
      verdict: "broken",
      code: "mount-pod-rejected",
      summary: `rejected by the kubelet: ${mp.status.reason}`,
      why: mp.status.message ?? "the node has not enough resources for the Mount Pod's requests",
      fix: `lower ${keys.mountCpuRequest}/${keys.mountMemoryRequest} (PVC annotation or StorageClass parameter) or free resources on ${mp.spec?.nodeName}`,
    };
  const unsched = mp.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  if (unsched)
    return {
      ...base,
      verdict: "broken",
      code: "mount-pod-unschedulable",
      summary: `Pending: ${unsched.message ?? unsched.reason}`,
      why: "the client cannot start, so the volume cannot be mounted",
      fix: `lower ${keys.mountCpuRequest}/${keys.mountMemoryRequest} or make room on the node (kubectl describe node ${mp.spec?.nodeName ?? ""})`,
    };
  const waiting = cs?.state?.waiting;
  if (
    waiting &&
    /^(ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull)$/.test(waiting.reason ?? "")
  ) {
    const image =
      (containerName ? findContainer(mp, containerName) : mp.spec?.containers?.[0])?.image ?? cs?.image;
    const pullEvents = events.filter((e) => e.reason === "Failed" && /pull/i.test(e.message ?? ""));
    return {
      ...base,
      verdict: "broken",
      code: "image-pull-failed",
      summary: `${waiting.reason}: image ${image}`,
      why: pullEvents[0]?.message ?? waiting.message ?? "the image cannot be pulled",
      fix: `check the image name (${keys.mountImage}, chart config.mountImage) and the pull secrets (chart imagePullSecrets) from node ${mp.spec?.nodeName}`,
      ...(pullEvents.length ? { evidence: pullEvents.slice(0, 2).map(eventLine) } : {}),
    };
  }
  if (waiting?.reason === "CreateContainerConfigError")
    return {
      ...base,
      verdict: "broken",
      code: "client-config-error",
      summary: `CreateContainerConfigError: ${waiting.message ?? ""}`,
      why: "the kubelet cannot build the client container (a Secret or key it references is missing)",
      fix: `kubectl describe ${object}`,
    };
  const last = cs?.lastState?.terminated ?? cs?.state?.terminated;
  const restarts = cs?.restartCount ?? 0;
  if (last?.reason === "OOMKilled")
    return {
      ...base,
      verdict: "broken",
      code: "client-oomkilled",
      summary: `OOMKilled (${restarts} restart(s)${memLimit ? `, memory limit ${memLimit}` : ""})`,
      why: 'the JuiceFS client used more memory than its limit; every pod using the mount saw "transport endpoint is not connected"',
      fix: `raise ${keys.mountMemoryLimit} (PVC annotation or StorageClass parameter) or lower buffer-size in mountOptions`,
      ...(logs.length ? { evidence: logs } : {}),
    };
  // A crash-looping client flaps between CrashLoopBackOff and a short Running: a non-zero exit within
  // the last ten minutes, after more than one restart, is a crash loop even while it runs.
  const lastExit = last?.finishedAt ? Date.parse(String(last.finishedAt)) : Number.NaN;
  const recentCrash = !!last && last.exitCode !== 0 && restarts > 1 && ctx.now - lastExit < 10 * 60_000;
  if (
    waiting?.reason === "CrashLoopBackOff" ||
    recentCrash ||
    (last && last.exitCode !== 0 && restarts > 0 && !cs?.ready)
  )
    return {
      ...base,
      verdict: "broken",
      code: "client-crashloop",
      summary: `CrashLoopBackOff: exit code ${last?.exitCode ?? "?"}${last?.reason ? ` (${last.reason})` : ""}, ${restarts} restart(s)`,
      why: "the JuiceFS client exits at start; its last log lines say why (metadata engine unreachable, wrong credentials, format failing)",
      fix: `kubectl logs ${object} -c ${cname} --previous`,
      ...(logs.length ? { evidence: logs } : {}),
    };
  if (mp.status?.phase === "Failed" || mp.status?.phase === "Succeeded")
    return {
      ...base,
      verdict: "broken",
      code: "client-ended",
      summary: `ended ${mp.status.phase}${mp.status.reason ? ` (${mp.status.reason})` : ""}`,
      why: mp.status.message ?? "the client is not running",
      fix: `kubectl describe ${object}`,
    };
  if (
    cs?.ready ||
    (mp.status?.phase === "Running" && cs?.state?.running && id === "mount-pod" && isReady(mp))
  )
    return {
      ...base,
      verdict: "ok",
      code: "client-ready",
      summary: `Running${restarts ? `, ${restarts} restart(s)` : ""}, ready`,
    };
  return {
    ...base,
    verdict: "warning",
    code: "client-starting",
    summary: `${mp.status?.phase ?? "Pending"}${waiting?.reason ? ` (${waiting.reason})` : ""}, not ready yet`,
    ...(logs.length ? { evidence: logs } : {}),
  };
}

function findContainer(p: V1Pod, name: string): V1Container | undefined {
  return [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === name);
}

function sidecarLink(ctx: Context, pod: V1Pod): Link {
  const clients = sidecarClientContainers(pod);
  const c = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((x) =>
    clients.includes(x.name),
  );
  const object = ref("pod", pod.metadata?.name ?? "", pod.metadata?.namespace);
  if (!c)
    return {
      id: "sidecar",
      object,
      verdict: "broken",
      code: "sidecar-not-injected",
      summary: "the pod has no JuiceFS sidecar",
      why: "in sidecar mode the client runs inside the pod; without it the volume is an empty directory or does not mount",
      fix: `recreate the pod (kubectl delete ${object}; its controller makes a new one) once the webhook is up`,
    };
  return clientPodLink(ctx, pod, "sidecar", c.name);
}

/** What the mount itself reports: the app pod's FailedMount events and our driver's events. */
function mountLink(ctx: Context, pod: V1Pod, pv: V1PersistentVolume): Link {
  const ns = pod.metadata?.namespace;
  const name = pod.metadata?.name ?? "";
  const object = ref("pod", name, ns);
  const events = ctx.events("Pod", ns, name);
  const vol = pv.metadata?.name ?? "";
  const recovered = events.find((e) => e.reason === "MountRecovered");
  const broken = events.find(
    (e) =>
      (e.reason === "MountBroken" || /transport endpoint is not connected/.test(e.message ?? "")) &&
      (!recovered || eventTime(e) > eventTime(recovered)),
  );
  if (broken) {
    const propagation = mountPropagationOf(pod, pv, ctx);
    const propagates = propagation.every((p) => p === "HostToContainer" || p === "Bidirectional");
    return {
      id: "mount",
      object,
      verdict: "broken",
      code: "mount-broken",
      summary: `the mount of ${vol} is broken (transport endpoint is not connected)`,
      why: "the JuiceFS client serving it died; the node plugin recreates the client and re-binds the targets",
      fix: propagates
        ? "recovery is automatic: wait for a MountRecovered event (files open before the break must be reopened by the application)"
        : `the pod's volumeMount lacks mountPropagation: HostToContainer, so the re-bound mount cannot reach the running container: restart the pod (kubectl delete ${object}), and label its namespace juicefs.com/enable-injection=true so the webhook adds the propagation`,
      evidence: [eventLine(broken)],
    };
  }
  const failed = events.find((e) => e.reason === "FailedMount" || e.reason === "MountPodNotReady");
  if (failed && pod.status?.phase !== "Running") {
    const m = failed.message ?? "";
    const timeout = /DeadlineExceeded|timed out|does not serve|is not Running|after \d+s/.test(m);
    return {
      id: "mount",
      object,
      verdict: "broken",
      code: timeout ? "mount-timeout" : "mount-failed",
      summary: timeout ? `mounting ${vol} timed out` : `mounting ${vol} failed`,
      why: m.split("\n")[0] ?? m,
      fix: timeout
        ? "the Mount Pod did not serve in time: its phase, reason and last log lines are in the message above (kubectl describe the Mount Pod)"
        : `kubectl describe ${object}`,
      evidence: events
        .filter((e) => e.reason === "FailedMount" || e.reason === "MountPodNotReady")
        .slice(0, 2)
        .flatMap((e) => (e.message ?? "").split("\n").slice(0, 12)),
    };
  }
  if (pod.status?.phase === "Running")
    return {
      id: "mount",
      object,
      verdict: "ok",
      code: "mount-ok",
      summary: `${vol} mounted (no mount failure reported)`,
    };
  return {
    id: "mount",
    object,
    verdict: "warning",
    code: "mount-pending",
    summary: `${vol} not mounted yet`,
  };
}

function mountPropagationOf(pod: V1Pod, pv: V1PersistentVolume, ctx: Context): string[] {
  const claim = pv.spec?.claimRef?.name;
  const volNames = (pod.spec?.volumes ?? [])
    .filter((v) => v.persistentVolumeClaim?.claimName === claim)
    .map((v) => v.name);
  void ctx;
  return (pod.spec?.containers ?? [])
    .flatMap((c) => c.volumeMounts ?? [])
    .filter((m) => volNames.includes(m.name))
    .map((m) => m.mountPropagation ?? "None");
}

// ---- the webhook ----

function webhookChain(ctx: Context, pod: V1Pod, pvc: V1PersistentVolumeClaim | undefined): Link[] {
  const ns = pod.metadata?.namespace ?? "default";
  const object = ref("pod", pod.metadata?.name ?? "", ns);
  const mutating = ctx.s.webhooks.mutating.find((w) =>
    (w.webhooks ?? []).some((h) => h.name.endsWith("juicefs.com")),
  );
  const mode = ctx.mode;
  if (!mutating) {
    if (ctx.failed("webhooks")) return [unknownLink("webhook", object, ctx.failed("webhooks")!)];
    return mode === "sidecar"
      ? [
          missing(
            "webhook",
            "mutatingwebhookconfiguration",
            "webhook-not-configured",
            "no MutatingWebhookConfiguration of the JuiceFS webhook exists",
            "install the chart with webhook.enabled=true (mountMode sidecar needs it)",
          ),
        ]
      : [];
  }
  const wcObject = ref("mutatingwebhookconfiguration", mutating.metadata?.name ?? "");
  const podLabels = pod.metadata?.labels ?? {};
  const nsObj = ctx.s.namespaces.find((n) => n.metadata?.name === ns);
  const labelled = nsObj?.metadata?.labels?.[labels.enableInjection] === "true";
  if (podLabels[labels.injectDone] === "true")
    return [
      {
        id: "webhook",
        object: wcObject,
        verdict: "ok",
        code: "webhook-injected",
        summary: `pod ${object} was mutated by the webhook`,
      },
    ];
  if (podLabels[labels.injectDisable] === "true")
    return [
      {
        id: "webhook",
        object,
        verdict: mode === "sidecar" ? "broken" : "ok",
        code: "webhook-opted-out",
        summary: `the pod opts out (${labels.injectDisable}: "true")`,
        ...(mode === "sidecar"
          ? {
              why: "in sidecar mode a pod without its sidecar cannot mount",
              fix: `remove the label ${labels.injectDisable} and recreate the pod`,
            }
          : {}),
      },
    ];
  if (!labelled && nsObj)
    return [
      {
        id: "webhook",
        object: ref("namespace", ns),
        verdict: mode === "sidecar" ? "broken" : "warning",
        code: "namespace-not-labelled",
        summary: `namespace ${ns} is not labelled ${labels.enableInjection}=true, so the webhook skipped the pod`,
        why:
          mode === "sidecar"
            ? "the sidecar is injected only in labelled namespaces"
            : "mounts get no mountPropagation: HostToContainer, so a restarted client's mount does not reach running containers",
        fix: `kubectl label namespace ${ns} ${labels.enableInjection}=true, then recreate the pod (kubectl delete ${object})`,
      },
    ];
  void pvc;
  const webhookPods = ctx.driverPods("webhook");
  if (!ctx.failed("driverPods") && webhookPods.length && !webhookPods.some(isReady))
    return [
      {
        id: "webhook",
        object: ref("pod", webhookPods[0]!.metadata?.name ?? "", webhookPods[0]!.metadata?.namespace),
        verdict: "broken",
        code: "webhook-down",
        summary: "no webhook pod is ready",
        why: `the pod was created while the webhook could not answer (failurePolicy ${mutating.webhooks?.[0]?.failurePolicy ?? "Fail"})`,
        fix: `kubectl describe ${ref("pod", webhookPods[0]!.metadata?.name ?? "", webhookPods[0]!.metadata?.namespace)}`,
      },
    ];
  return [
    {
      id: "webhook",
      object: wcObject,
      verdict: mode === "sidecar" ? "broken" : "warning",
      code: "webhook-skipped",
      summary: "the pod was admitted without the webhook's mutation",
      why: "it was created before the webhook was configured, or the webhook was unreachable with failurePolicy Ignore",
      fix: `recreate the pod (kubectl delete ${object})`,
    },
  ];
}

// ---- helpers ----

function unknownLink(id: LinkId, object: string, why: string): Link {
  return {
    id,
    object,
    verdict: "unknown",
    code: "cannot-read",
    summary: `cannot tell: ${why}`,
    fix: "grant the doctor's read-only ClusterRole (chart value doctor.rbac.create) to your user",
  };
}

function isReady(p: V1Pod): boolean {
  return (
    p.status?.phase === "Running" && p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True"
  );
}

function podState(p: V1Pod): string {
  if (p.metadata?.deletionTimestamp) return "Terminating";
  const cs: V1ContainerStatus[] = p.status?.containerStatuses ?? [];
  const w = cs.map((c) => c.state?.waiting?.reason).find(Boolean);
  return `${p.status?.phase ?? "Pending"}${w ? ` (${w})` : ""}${p.status?.phase === "Running" && !isReady(p) ? ", not ready" : ""}`;
}

function logTail(ctx: Context, ns: string | undefined, pod: string, container: string): string[] {
  const prev = ctx.s.logs[`${ns}/${pod}/${container}/previous`];
  const cur = ctx.s.logs[`${ns}/${pod}/${container}`];
  const text = prev?.trim() ? prev : (cur ?? "");
  return text.trim().split("\n").filter(Boolean).slice(-10);
}

function eventLine(e: CoreV1Event): string {
  return `${e.type ?? "Normal"} ${e.reason ?? ""}: ${(e.message ?? "").split("\n")[0]}${(e.count ?? 1) > 1 ? ` (x${e.count})` : ""}`;
}

/** One row of `doctor --all`: an unhealthy pod, claim or Mount Pod and its first broken link. */
export interface SummaryRow {
  object: string;
  verdict: Verdict;
  code: string;
  summary: string;
  /** The broken link's reason and remedy, when it has them (the dashboard shows them beside the row). */
  why?: string;
  fix?: string;
}

/**
 * Every JuiceFS pod, claim and Mount Pod of the snapshot (gathered with `all`), diagnosed one by one;
 * the rows of those that are not healthy. A pod's row covers its claims, so a claim is listed on its
 * own only when no pod of the snapshot uses it.
 */
export function diagnoseAll(s: Snapshot): { rows: SummaryRow[]; checked: number } {
  const ctx = new Context(s);
  const rows: SummaryRow[] = [];
  let checked = 0;
  const covered = new Set<string>();
  const add = (d: Diagnosis) => {
    checked++;
    const bad = d.firstBroken ?? d.links.find((l) => l.verdict === "unknown");
    if (bad)
      rows.push({
        object: d.target,
        verdict: bad.verdict,
        code: bad.code,
        summary: `${bad.object}: ${bad.summary}`,
        ...(bad.why ? { why: bad.why } : {}),
        ...(bad.fix ? { fix: bad.fix } : {}),
      });
  };
  for (const pod of s.pods) {
    const claims = juicefsClaims(ctx, pod);
    if (claims.length === 0) continue;
    for (const c of claims) covered.add(`${pod.metadata?.namespace}/${c}`);
    add(
      diagnose({
        ...s,
        target: {
          kind: "pod",
          name: pod.metadata?.name ?? "",
          namespace: pod.metadata?.namespace ?? "default",
        },
      }),
    );
  }
  for (const pvc of s.pvcs) {
    const key = `${pvc.metadata?.namespace}/${pvc.metadata?.name}`;
    if (covered.has(key)) continue;
    const pv = ctx.pv(pvc.spec?.volumeName);
    const sc = ctx.sc(pvc.spec?.storageClassName);
    if (!(isJuiceFSVolume(pv) || (!pv && sc?.provisioner === driverName))) continue;
    add(
      diagnose({
        ...s,
        target: {
          kind: "pvc",
          name: pvc.metadata?.name ?? "",
          namespace: pvc.metadata?.namespace ?? "default",
        },
      }),
    );
  }
  // Mount Pods on their own: stuck Terminating, crashing, or not serving, whoever uses them.
  for (const mp of s.mountPods) {
    checked++;
    const link = mp.metadata?.deletionTimestamp
      ? idleMountPods(ctx, {
          spec: {
            csi: {
              driver: driverName,
              volumeHandle: mp.metadata?.annotations?.["juicefs.com/volume-id"] ?? "",
            },
          },
        }).find((l) => l.object.startsWith(`pod/${mp.metadata?.name} `))
      : clientPodLink(ctx, mp, "mount-pod");
    if (link && (link.verdict === "broken" || link.verdict === "unknown"))
      rows.push({
        object: ref("pod", mp.metadata?.name ?? "", mp.metadata?.namespace),
        verdict: link.verdict,
        code: link.code,
        summary: link.summary,
        ...(link.why ? { why: link.why } : {}),
        ...(link.fix ? { fix: link.fix } : {}),
      });
  }
  return { rows, checked };
}
