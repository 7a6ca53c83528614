// Offline injection and validation (no cluster). Filled in by the webhook issue.
export interface OfflineResult {
  ok: boolean;
  output: string;
  warnings: string[];
}

export async function injectOffline(_in: {
  pods: string;
  context: string[];
  output: string;
}): Promise<OfflineResult> {
  throw new Error("offline injection is not built yet");
}

export async function validateOffline(_in: { manifests: string }): Promise<OfflineResult> {
  throw new Error("offline validation is not built yet");
}
