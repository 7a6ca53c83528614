// CSI Identity service: who we are, what we offer, whether we can work right now.
import type { ServiceHandlers } from "./proto.ts";

export interface IdentityOptions {
  name: string;
  version: string;
  /** Ready when the plugin can actually work; throw a FAILED_PRECONDITION CsiError when it cannot. */
  probe: () => Promise<boolean>;
  manifest?: Record<string, string>;
}

export function identityService(opts: IdentityOptions): ServiceHandlers {
  return {
    async GetPluginInfo() {
      return { name: opts.name, vendor_version: opts.version, manifest: opts.manifest ?? {} };
    },
    async GetPluginCapabilities() {
      // The same answer from every instance (controller or node): the plugin "as a whole".
      return {
        capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }, { volume_expansion: { type: "ONLINE" } }],
      };
    },
    async Probe() {
      return { ready: { value: await opts.probe() } };
    },
  };
}
