// The path syntax of helm-unittest assertions: helm-unittest evaluates `path` with its fork of
// vmware-labs/yaml-jsonpath (README "Syntax" and "Semantics"; DOCUMENT.md "Assertion": map keys with
// periods use the bracket form, e.g. metadata.annotations["kubernetes.io/ingress.class"]).
// Supported here: an optional `$`, an undotted first child, `.name`, `.*`, `["a", 'b']`, `[n]`
// (negative counts from the end), `[n,m]`, `[*]`, and filters `[?(...)]` with `@`/`$` subpaths,
// literals (numbers, '...' or "...", true, false, null), `==` `!=` `<` `<=` `>` `>=`, `=~ /re/`,
// `!`, `&&`, `||` and parentheses. Anything else (recursive descent `..`, ranges `[a:b]`, the
// property-name operator `~`) is refused with an error, so an assertion never silently matches
// nothing because this runner misread its path.
import { goRegExp } from "./regex.ts";

type Node = unknown;
type Step = (node: Node, root: Node) => Node[];

export class PathError extends Error {
  override name = "PathError";
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Every value the path selects in `doc` (an empty list when nothing matches). */
export function findPath(doc: Node, path: string): Node[] {
  const steps = compilePath(path);
  let nodes: Node[] = [doc];
  for (const s of steps) nodes = nodes.flatMap((n) => s(n, doc));
  return nodes;
}

const compiled = new Map<string, Step[]>();

/** Parses a path once; throws PathError naming the position of what it cannot read. */
export function compilePath(path: string): Step[] {
  let steps = compiled.get(path);
  if (!steps) {
    steps = new PathParser(path).parsePath();
    compiled.set(path, steps);
  }
  return steps;
}

const child =
  (name: string): Step =>
  (n) =>
    isMap(n) && Object.hasOwn(n, name) ? [n[name]] : [];
const children =
  (names: string[]): Step =>
  (n) =>
    isMap(n) ? names.filter((k) => Object.hasOwn(n, k)).map((k) => n[k]) : [];
const allChildren: Step = (n) => (Array.isArray(n) ? [...n] : isMap(n) ? Object.values(n) : []);
const indices =
  (idx: number[]): Step =>
  (n) => {
    if (!Array.isArray(n)) return [];
    const out: Node[] = [];
    for (const i of idx) {
      const j = i < 0 ? n.length + i : i;
      if (j >= 0 && j < n.length) out.push(n[j]);
    }
    return out;
  };

// Stops of an undotted or dotted child name (yaml-jsonpath's lexer).
const nameStops = new Set([".", "[", "]", ")", " ", "&", "|", "=", "!", ">", "<", "~"]);

class PathParser {
  private pos = 0;
  private readonly src: string;
  constructor(src: string) {
    this.src = src;
  }

  private fail(what: string): never {
    throw new PathError(`path ${JSON.stringify(this.src)}: ${what} at position ${this.pos}`);
  }
  private peek(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }
  private done(): boolean {
    return this.pos >= this.src.length;
  }

  private readName(): string {
    const start = this.pos;
    while (!this.done() && !nameStops.has(this.src[this.pos]!)) this.pos++;
    return this.src.slice(start, this.pos);
  }

  parsePath(): Step[] {
    const steps: Step[] = [];
    if (this.peek("$")) this.pos++;
    else if (!this.done() && !this.peek(".") && !this.peek("[")) {
      const name = this.readName();
      if (!name) this.fail("child name missing");
      steps.push(name === "*" ? allChildren : child(name));
    }
    while (!this.done()) {
      if (this.peek("..")) this.fail("recursive descent (..) is not supported by this runner");
      if (this.peek(".")) {
        this.pos++;
        const name = this.readName();
        if (!name) this.fail("child name missing");
        steps.push(name === "*" ? allChildren : child(name));
      } else if (this.peek("[")) {
        steps.push(this.parseBracket());
      } else if (this.peek("~")) {
        this.fail("the property-name operator (~) is not supported by this runner");
      } else this.fail("invalid path syntax");
    }
    return steps;
  }

  private parseBracket(): Step {
    this.pos++; // [
    const ws = () => {
      while (this.src[this.pos] === " ") this.pos++;
    };
    ws();
    const q = this.src[this.pos];
    if (q === "'" || q === '"') {
      const names: string[] = [];
      for (;;) {
        ws();
        const quote = this.src[this.pos];
        if (quote !== "'" && quote !== '"') this.fail(`missing ' or "`);
        this.pos++;
        let name = "";
        for (;;) {
          if (this.done()) this.fail(`unmatched ${quote}`);
          const c = this.src[this.pos]!;
          if (c === "\\") {
            const next = this.src[this.pos + 1];
            if (next !== quote && next !== "\\")
              this.fail(`unsupported escape sequence inside ${quote}${quote}`);
            name += next;
            this.pos += 2;
          } else if (c === quote) {
            this.pos++;
            break;
          } else {
            name += c;
            this.pos++;
          }
        }
        names.push(name);
        ws();
        if (this.peek(",")) {
          this.pos++;
          continue;
        }
        break;
      }
      if (!this.peek("]")) this.fail(`missing "]" or ","`);
      this.pos++;
      if (this.peek("~")) this.fail("the property-name operator (~) is not supported by this runner");
      return children(names);
    }
    if (this.peek("?(")) {
      this.pos += 2;
      const start = this.pos;
      // The filter ends at the ")]" that closes it (quotes and nested brackets skipped).
      let depth = 0;
      let quote = "";
      for (; !this.done(); this.pos++) {
        const c = this.src[this.pos]!;
        if (quote) {
          if (c === quote) quote = "";
        } else if (c === "'" || c === '"') quote = c;
        else if (c === "/" && /=~\s*$/.test(this.src.slice(start, this.pos))) {
          // a regular expression literal: up to the next unescaped "/"
          for (this.pos++; !this.done() && this.src[this.pos] !== "/"; this.pos++)
            if (this.src[this.pos] === "\\") this.pos++;
        } else if (c === "(" || c === "[") depth++;
        else if ((c === ")" || c === "]") && depth > 0) depth--;
        else if (c === ")" && depth === 0 && this.src[this.pos + 1] === "]") break;
      }
      if (this.done()) this.fail("missing end of filter )]");
      const expr = new FilterParser(this.src.slice(start, this.pos), this.src).parse();
      this.pos += 2;
      return (n, root) => {
        if (Array.isArray(n)) return n.filter((c) => expr(c, root));
        return expr(n, root) ? [n] : [];
      };
    }
    const end = this.src.indexOf("]", this.pos);
    if (end < 0) this.fail("unmatched [");
    const sub = this.src.slice(this.pos, end).trim();
    this.pos = end + 1;
    if (this.peek("~")) this.fail("the property-name operator (~) is not supported by this runner");
    if (sub === "*") return (n, root) => (isMap(n) ? allChildren(n, root) : Array.isArray(n) ? [...n] : []);
    const parts = sub.split(",").map((s) => s.trim());
    if (parts.some((p) => !/^-?\d+$/.test(p)))
      this.fail(`subscript [${sub}] is not supported by this runner (only integers, unions and *)`);
    return indices(parts.map(Number));
  }
}

// ---- filters ------------------------------------------------------------------------------

type Filter = (node: Node, root: Node) => boolean;
type Term = { kind: "path"; rel: boolean; steps: Step[] } | { kind: "literal"; value: Node };

/** A scalar's comparison type in yaml-jsonpath (numbers compare with numbers, and so on). */
function typeOf(v: Node): "number" | "string" | "boolean" | "null" | "other" {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "boolean";
  return "other";
}

type Op = "==" | "!=" | "<" | "<=" | ">" | ">=";

/** yaml-jsonpath's comparisonFilter: incompatible types compare as "incomparable". */
function compare(op: Op, l: Node, r: Node): boolean {
  const tl = typeOf(l);
  const tr = typeOf(r);
  let c: -1 | 0 | 1 | undefined;
  if (tl !== tr || tl === "other") c = undefined;
  else if (tl === "null") c = 0;
  else if (tl === "boolean") c = l === r ? 0 : undefined;
  else {
    const a = l as number | string;
    const b = r as number | string;
    c = a < b ? -1 : a > b ? 1 : 0;
  }
  switch (op) {
    case "==":
      return c === 0;
    case "!=":
      return c !== 0;
    case "<":
      return c === -1;
    case "<=":
      return c === -1 || c === 0;
    case ">":
      return c === 1;
    case ">=":
      return c === 1 || c === 0;
  }
}

class FilterParser {
  private pos = 0;
  private readonly src: string;
  private readonly whole: string;
  constructor(src: string, whole: string) {
    this.src = src;
    this.whole = whole;
  }
  private fail(what: string): never {
    throw new PathError(`path ${JSON.stringify(this.whole)}: filter ${JSON.stringify(this.src)}: ${what}`);
  }
  private ws() {
    while (/\s/.test(this.src[this.pos] ?? "")) this.pos++;
  }
  private eat(s: string): boolean {
    this.ws();
    if (this.src.startsWith(s, this.pos)) {
      this.pos += s.length;
      return true;
    }
    return false;
  }

  parse(): Filter {
    const f = this.or();
    this.ws();
    if (this.pos < this.src.length) this.fail(`unexpected ${JSON.stringify(this.src.slice(this.pos))}`);
    return f;
  }
  private or(): Filter {
    let f = this.and();
    while (this.eat("||")) {
      const a = f;
      const b = this.and();
      f = (n, r) => a(n, r) || b(n, r);
    }
    return f;
  }
  private and(): Filter {
    let f = this.unary();
    while (this.eat("&&")) {
      const a = f;
      const b = this.unary();
      f = (n, r) => a(n, r) && b(n, r);
    }
    return f;
  }
  private unary(): Filter {
    this.ws();
    if (this.src[this.pos] === "!" && this.src[this.pos + 1] !== "=") {
      this.pos++;
      const f = this.unary();
      return (n, r) => !f(n, r);
    }
    if (this.eat("(")) {
      const f = this.or();
      if (!this.eat(")")) this.fail("missing )");
      return f;
    }
    return this.comparison();
  }
  private comparison(): Filter {
    const lhs = this.term();
    this.ws();
    if (this.eat("=~")) {
      this.ws();
      if (this.src[this.pos] !== "/") this.fail("=~ needs a /regular expression/");
      let i = this.pos + 1;
      let body = "";
      for (; i < this.src.length && this.src[i] !== "/"; i++) {
        if (this.src[i] === "\\" && this.src[i + 1] === "/") {
          body += "/";
          i++;
        } else body += this.src[i];
      }
      if (i >= this.src.length) this.fail("unterminated regular expression");
      this.pos = i + 1;
      const re = goRegExp(body);
      if (lhs.kind !== "path") this.fail("=~ needs a path on its left");
      return (n, r) => {
        const vals = this.values(lhs, n, r);
        return vals.length > 0 && vals.every((v) => typeof v === "string" && re.test(v));
      };
    }
    const op = (["==", "!=", "<=", ">=", "<", ">"] as const).find((o) => this.eat(o));
    if (!op) {
      if (lhs.kind === "literal") {
        if (typeof lhs.value === "boolean") return () => lhs.value as boolean;
        this.fail("a literal alone is not a filter");
      }
      return (n, r) => this.values(lhs, n, r).length > 0;
    }
    const rhs = this.term();
    return (n, r) => {
      const ls = this.values(lhs, n, r);
      const rs = this.values(rhs, n, r);
      let matched = false;
      for (const l of ls)
        for (const x of rs) {
          if (!compare(op, l, x)) return false;
          matched = true;
        }
      return matched;
    };
  }
  private values(t: Term, node: Node, root: Node): Node[] {
    if (t.kind === "literal") return [t.value];
    let nodes: Node[] = [t.rel ? node : root];
    for (const s of t.steps) nodes = nodes.flatMap((x) => s(x, root));
    return nodes;
  }
  private term(): Term {
    this.ws();
    const c = this.src[this.pos];
    if (c === "@" || c === "$") {
      this.pos++;
      const start = this.pos;
      // The subpath runs to the first operator or space outside brackets and quotes.
      let depth = 0;
      let quote = "";
      for (; this.pos < this.src.length; this.pos++) {
        const ch = this.src[this.pos]!;
        if (quote) {
          if (ch === quote) quote = "";
        } else if (ch === "'" || ch === '"') quote = ch;
        else if (ch === "[") depth++;
        else if (ch === "]") depth--;
        else if (depth === 0 && /[\s=!<>&|)]/.test(ch)) break;
      }
      const sub = this.src.slice(start, this.pos);
      if (sub && !sub.startsWith(".") && !sub.startsWith("[")) this.fail(`bad subpath ${c}${sub}`);
      return { kind: "path", rel: c === "@", steps: new PathParser(`$${sub}`).parsePath() };
    }
    if (c === "'" || c === '"') {
      const end = this.src.indexOf(c, this.pos + 1);
      if (end < 0) this.fail(`unmatched string delimiter ${c}`);
      const value = this.src.slice(this.pos + 1, end);
      this.pos = end + 1;
      return { kind: "literal", value };
    }
    const m = /^(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null)/.exec(this.src.slice(this.pos));
    if (!m) this.fail(`unexpected ${JSON.stringify(this.src.slice(this.pos))}`);
    this.pos += m[1]!.length;
    const lit = m[1]!;
    return {
      kind: "literal",
      value: lit === "true" ? true : lit === "false" ? false : lit === "null" ? null : Number(lit),
    };
  }
}
