// Entry of `juicefs-csi driver`. Filled in by the CSI plugin issue.
export async function runDriver(_opts: Record<string, unknown>): Promise<void> {
  throw new Error("the CSI plugin is not built yet");
}
