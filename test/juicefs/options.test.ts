// validateMountOptions (used alone by the validating webhook), writeback relatives and JuiceFS sizes.
import t from "tap";
import {
  driverOwnedOptions,
  parseSizeMiB,
  validateMountOptions,
  writebackReason,
} from "../../driver/juicefs/index.ts";

const valid: string[][] = [
  [],
  ["allow_other"],
  ["cache-size=1024", "buffer-size=300"],
  ["cache-dir=/a:/b", "subdir=x/y"],
  ["writeback_cache", "writeback=false", "upload-delay=0s"],
  ["ro", "rw", "_netdev"],
  ["enable-xattr,max-uploads=20"],
  ["fsname=a$b;c`d"],
];
for (const opts of valid)
  t.test(`valid: ${JSON.stringify(opts)}`, async (t) => t.same(validateMountOptions(opts).errors, []));

const invalid: [string[], RegExp][] = [
  [["writeback"], /refused.*lost/],
  [["writeback=1"], /refused/],
  [["Writeback"], /refused/],
  [["writeback_size=1"], /write-back mode/],
  [["upload-delay=10"], /delays uploads/],
  [["upload-delay"], /delays uploads/],
  [["upload-hours=1"], /delays uploads/],
  [["foreground"], /set by the driver/],
  [["metrics=1.2.3.4:1"], /set by the driver/],
  [["no-update"], /set by the driver/],
  [["rsa-key=/k"], /set by the driver/],
  [["a=b=c"], /more than one "="/],
  [["=b"], /empty name/],
  [["-o"], /without dashes/],
  [["a b=1"], /not valid/],
  [["a=b\u0007"], /control character/],
  [["cache-dir=rel"], /absolute/],
  [["subdir=../x"], /must stay inside/],
  [["buffer-size=-1"], /not a size/],
];
for (const [opts, re] of invalid)
  t.test(`invalid: ${JSON.stringify(opts)}`, async (t) => {
    const r = validateMountOptions(opts, "StorageClass fast mountOptions");
    t.equal(r.errors.length, 1, JSON.stringify(r.errors));
    t.match(r.errors[0]!.message, re);
    t.match(r.errors[0]!.message, /^StorageClass fast mountOptions: /, "names the object");
    t.equal(r.errors[0]!.field, "mountOptions");
  });

t.test("several errors at once", async (t) => {
  t.equal(validateMountOptions(["writeback", "foreground", "a=b=c", "ok=1"]).errors.length, 3);
});

t.test("writebackReason", async (t) => {
  t.ok(writebackReason("writeback", undefined));
  t.equal(writebackReason("writeback", "false"), undefined);
  t.equal(writebackReason("writeback_cache", undefined), undefined);
  t.equal(writebackReason("upload-delay", "0"), undefined);
  t.ok(writebackReason("upload-delay", "1m"));
  t.equal(writebackReason("cache-size", "1"), undefined);
});

t.test("driver-owned options", async (t) => {
  for (const o of ["foreground", "no-update", "metrics", "rsa-key"]) t.ok(driverOwnedOptions.has(o), o);
});

const sizes: [string, number | undefined][] = [
  ["300", 300],
  ["300M", 300],
  ["1G", 1024],
  ["1GiB", 1024],
  ["1gb", 1024],
  ["512K", 0.5],
  ["1T", 1024 * 1024],
  ["1.5G", 1536],
  ["1048576B", 1],
  ["", undefined],
  ["-1", undefined],
  ["1X", undefined],
  ["G", undefined],
];
for (const [s, want] of sizes)
  t.test(`parseSizeMiB(${JSON.stringify(s)})`, async (t) => t.equal(parseSizeMiB(s), want));
