// postject ships no types; this is the part of its API (dist/api.js) that scripts/build-cli.ts uses.
declare module "postject" {
  export function inject(
    filename: string,
    resourceName: string,
    resourceData: Buffer,
    options?: { sentinelFuse?: string; machoSegmentName?: string; overwrite?: boolean },
  ): Promise<void>;
  const api: { inject: typeof inject };
  export default api;
}
