// Shared inputs for the JuiceFS domain tests (not a test file itself).
import type { JuiceFSSettings, SettingsInput } from "../../driver/juicefs/index.ts";
import { parseSettings } from "../../driver/juicefs/index.ts";

export const ceSecret: Record<string, string> = {
  name: "myjfs",
  metaurl: "redis://:pw@redis:6379/1",
  storage: "s3",
  bucket: "https://bucket.s3.us-east-1.amazonaws.com",
  "access-key": "AKIDEXAMPLE",
  "secret-key": "SECRETEXAMPLE",
};

export const eeSecret: Record<string, string> = {
  name: "myjfs",
  token: "TOKENEXAMPLE",
  "access-key": "AKIDEXAMPLE",
  "secret-key": "SECRETEXAMPLE",
};

export function input(over: Partial<SettingsInput> = {}): SettingsInput {
  return {
    volumeId: "pvc-1",
    secret: ceSecret,
    secretRef: { name: "jfs-secret", namespace: "default" },
    objectName: "PersistentVolume pvc-1",
    ...over,
  };
}

/** parseSettings that must succeed. */
export function settingsOf(over: Partial<SettingsInput> = {}): JuiceFSSettings {
  const r = parseSettings(input(over));
  if (!r.ok) throw new Error(`expected valid settings: ${JSON.stringify(r.errors)}`);
  return r.settings;
}

export const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
