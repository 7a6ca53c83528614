// Entry of `juicefs-csi webhook`. Filled in by the webhook issue.
export async function runWebhook(_opts: Record<string, unknown>): Promise<void> {
  throw new Error("the admission webhook is not built yet");
}
