// The meta URL (Secret key `metaurl`): checked per scheme, and split so its password never reaches a
// command line. JuiceFS reads the password from $META_PASSWORD: NewClient (pkg/meta/interface.go)
// inserts it at the first ":@" of the URL when the variable is set, for every engine (redis, mysql,
// postgres, etcd, ...), and the Redis engines also take it when the URL has no password at all
// (https://juicefs.com/docs/community/databases_for_metadata, "META_PASSWORD", JuiceFS >= 1.0).
// So `redis://user:pw@h:6379/1` is run as `redis://user:@h:6379/1` with META_PASSWORD=pw: the client
// rebuilds exactly the URL it was given before.

/**
 * The URL without its password and the password (as written, percent escapes kept: JuiceFS puts the
 * variable back into the URL text). The user-info part is what lies between "://" and the last "@"
 * before the first "/" after it (Go's url.Parse also takes the last "@"; a file path with "@" such
 * as sqlite3:///a@b has none there); the password is what follows its first ":". Putting the
 * password back at the first ":@" gives the original text again. The client container's start
 * script (container.ts) applies the same rule for pods, where the URL reaches the container only
 * through the Secret.
 */
export function splitMetaPassword(url: string): { url: string; password?: string } {
  const sp = url.indexOf("://");
  if (sp < 0) return { url };
  const rest = url.slice(sp + 3);
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const at = authority.lastIndexOf("@");
  if (at < 0) return { url };
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0 || colon === userinfo.length - 1) return { url };
  return {
    url: `${url.slice(0, sp + 3)}${userinfo.slice(0, colon)}:@${rest.slice(at + 1)}`,
    password: userinfo.slice(colon + 1),
  };
}

/** Meta engines of JuiceFS community edition (pkg/meta: Register(...) calls). */
export const metaSchemes = [
  "redis",
  "rediss",
  "unix",
  "redis-split",
  "tikv",
  "etcd",
  "mysql",
  "postgres",
  "sqlite3",
  "badger",
  "fdb",
  "memkv",
] as const;

const described: Record<string, string> = {
  redis: "redis://[user:password@]host[:port]/db",
  rediss: "rediss://[user:password@]host[:port]/db",
  unix: "unix://[user:password@]/path/to/redis.sock?db=1",
  tikv: "tikv://pd1:2379[,pd2:2379]/prefix",
  etcd: "etcd://[user:password@]host:2379[,host2:2379]/prefix",
  mysql: "mysql://user:password@(host:3306)/database",
  postgres: "postgres://user:password@host:5432/database",
  sqlite3: "sqlite3:///path/to/file.db",
  badger: "badger:///path/to/dir",
};

/**
 * Characters refused anywhere in a meta URL: control characters (a newline would end the value in
 * a log line or an env file), spaces, and the shell metacharacters that are outside URL syntax
 * (RFC 3986 never allows them unescaped: percent-encode them, e.g. %60 for "`", %7C for "|"). Kept:
 * what the engines' URL forms use — "(" ")" (mysql host), "," (several hosts), "?" "&" "=" (query),
 * "%" (escapes), "@" ":" "/" "[" "]" (IPv6) — and the other RFC 3986 sub-delims ("!" "$" "'" "*" "+"
 * ";"), which passwords often hold and which never meet a shell here: the URL reaches the client
 * as one argv element or an environment variable.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const refused = /[\u0000-\u0020\u007f`"\\|<>{}^]/u;

const describeChar = (c: string): string => {
  const code = c.codePointAt(0) ?? 0;
  if (c === " ") return "a space";
  if (c === "\n") return "a newline";
  if (c === "\r") return "a carriage return";
  if (c === "\t") return "a tab";
  if (code < 0x20 || code === 0x7f) return `a control character (U+${code.toString(16).padStart(4, "0")})`;
  return `"${c}"`;
};

/**
 * Why this meta URL cannot be used, or undefined when it can. The message names what is wrong and
 * how to fix it but never repeats the URL or any part of it (it holds a password); the caller adds
 * which Secret and key it came from.
 */
export function metaUrlProblem(url: string): string | undefined {
  if (url === "") return "is empty; set it to the meta engine URL, e.g. redis://host:6379/1";
  for (const c of url) {
    const code = c.codePointAt(0) ?? 0;
    if (refused.test(c) || code > 0x7e)
      return `contains ${code > 0x7e ? `a non-ASCII character (U+${code.toString(16).padStart(4, "0")})` : describeChar(c)}, which a meta URL cannot hold; percent-encode it (e.g. in the password) or remove it`;
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\//.exec(url);
  if (!m) {
    // JuiceFS treats a bare "host:port/db" as Redis; keep that, with the same checks as redis://.
    if (url.includes("://"))
      return `has an invalid scheme; use one of ${metaSchemes.join(", ")} (e.g. ${described.redis})`;
    return hostProblem(url.split("/")[0]!.replace(/^.*@/, ""), "redis");
  }
  const scheme = m[1]!;
  if (!(metaSchemes as readonly string[]).includes(scheme))
    return `has the unknown scheme "${scheme}"; use one of ${metaSchemes.join(", ")}`;
  const rest = url.slice(m[0].length);
  // The user-info ends at the last "@" before the first "/" (as in splitMetaPassword).
  const slash = rest.indexOf("/");
  const at = (slash < 0 ? rest : rest.slice(0, slash)).lastIndexOf("@");
  const afterUser = at >= 0 ? rest.slice(at + 1) : rest;
  switch (scheme) {
    case "sqlite3":
    case "badger":
      if (afterUser === "" || afterUser === "/") return `has no path; use the form ${described[scheme]}`;
      return undefined;
    case "unix":
      if (!afterUser.startsWith("/")) return `needs an absolute socket path; use the form ${described.unix}`;
      return undefined;
    case "mysql": {
      // go-sql-driver DSN: user:password@tcp(host:port)/db, or @(host)/db, or @unix(/sock)/db.
      if (!/^(?:[a-z]*\([^()]+\)|[^/()]*)\/[^/]*$/i.test(afterUser.split("?")[0]!))
        return `is not a MySQL address; use the form ${described.mysql}`;
      return undefined;
    }
    case "memkv":
    case "fdb":
      return undefined;
    default: {
      const host = afterUser.split(/[/?]/)[0]!;
      if (host === "" && scheme !== "postgres")
        return `has no host; use the form ${described[scheme] ?? `${scheme}://host:port/...`}`;
      return host === "" ? undefined : hostProblem(host, scheme);
    }
  }
}

/** host[:port][,host[:port]...] with a numeric port in range; "[v6]" literals allowed. */
function hostProblem(hosts: string, scheme: string): string | undefined {
  for (const h of hosts.split(",")) {
    if (h === "")
      return `has an empty host in its host list; use the form ${described[scheme] ?? "host:port"}`;
    const hm = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+|[a-z0-9_-]+)(?::(\d*))?$/i.exec(h);
    if (!hm) return `has an invalid host; use the form ${described[scheme] ?? "host:port"}`;
    const port = hm[2];
    if (port !== undefined && port !== "" && (Number(port) < 1 || Number(port) > 65535))
      return "has a port outside 1-65535";
  }
  return undefined;
}
