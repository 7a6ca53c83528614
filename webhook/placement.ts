// Native or classic sidecars, decided from what runs pods: the kubelets. During a control-plane
// upgrade the API server is newer than the kubelets, and a native sidecar (an init container with
// restartPolicy Always) on a kubelet without SidecarContainers (beta and on by default from 1.29)
// is a plain init container that never ends: the pod never starts. So "auto" means native only while
// every node's kubelet is 1.29 or newer (status.nodeInfo.kubeletVersion, from the Node informer), and
// it follows node changes (a node upgraded, added or removed) without a restart of the webhook.
import { supportsNativeSidecars } from "./config.ts";

export interface NodeLike {
  metadata?: { name?: string };
  status?: { nodeInfo?: { kubeletVersion?: string } };
}

/** What the mutate handler asks per review: O(1) unless nodes changed since the last question. */
export interface Placement {
  native(): boolean;
  /** Warnings for every injected pod (nativeSidecar forced true on nodes that lack support). */
  warnings(): readonly string[];
}

const kubeletVersion = /^v?(\d+)\.(\d+)/;

/** Nodes whose kubelet cannot run native sidecars (older than 1.29, or an unreadable version). */
export function nodesWithoutNativeSidecars(nodes: ReadonlyArray<NodeLike>): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    const m = kubeletVersion.exec(n.status?.nodeInfo?.kubeletVersion ?? "");
    if (!m || !supportsNativeSidecars({ major: m[1]!, minor: m[2]! }))
      out.push(`${n.metadata?.name ?? "?"} (kubelet ${n.status?.nodeInfo?.kubeletVersion || "unknown"})`);
  }
  return out;
}

export class NodePlacement implements Placement {
  private readonly setting: boolean | "auto";
  private readonly nodes: () => ReadonlyArray<NodeLike>;
  /** Used while no node is known (informer not synced, or no access): the API server's version. */
  private readonly fallback: boolean;
  private readonly onDecision: ((native: boolean, old: string[]) => void) | undefined;
  private dirty = true;
  private decided = false;
  private warned: readonly string[] = [];

  constructor(opts: {
    setting: boolean | "auto";
    nodes: () => ReadonlyArray<NodeLike>;
    fallback: boolean;
    /** Called when the decision (or the set of unsupported nodes) changes, for the log. */
    onDecision?: (native: boolean, unsupported: string[]) => void;
  }) {
    this.setting = opts.setting;
    this.nodes = opts.nodes;
    this.fallback = opts.fallback;
    this.onDecision = opts.onDecision;
  }

  /** A Node was added, changed or deleted: decide again at the next review. */
  invalidate(): void {
    this.dirty = true;
  }

  native(): boolean {
    if (this.dirty) this.decide();
    return this.decided;
  }

  warnings(): readonly string[] {
    if (this.dirty) this.decide();
    return this.warned;
  }

  private decide(): void {
    this.dirty = false;
    const nodes = this.nodes();
    const old = nodesWithoutNativeSidecars(nodes);
    const before = this.decided;
    if (this.setting === false) this.decided = false;
    else if (this.setting === true) this.decided = true;
    else this.decided = nodes.length === 0 ? this.fallback : old.length === 0;
    const shown = old.slice(0, 3).join(", ") + (old.length > 3 ? `, and ${old.length - 3} more` : "");
    this.warned =
      this.setting === true && old.length > 0
        ? [
            `webhook.nativeSidecar is forced true, but ${old.length} node(s) cannot run native sidecars: ${shown}; a pod scheduled there never starts (its JuiceFS client is an init container that never ends)`,
          ]
        : [];
    if (before !== this.decided || old.length > 0) this.onDecision?.(this.decided, old);
  }
}
