// The dashboard's pure parts: escaping, log follow's overlap, redirects after sign-in, object refs.
import t from "tap";
import { escapeHtml, html } from "../../dashboard/html.ts";
import { newLines, redactLine, splitLines } from "../../dashboard/logs.ts";
import { hrefOf, parseRef } from "../../dashboard/model.ts";
import { safeNext } from "../../dashboard/token-auth.ts";

t.test("html escapes every interpolated value, once", async (t) => {
  t.equal(
    escapeHtml(`<a href="x" onclick='y'>&\``),
    "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;",
  );
  const name = '"><script>alert(1)</script>';
  const out = html`<td title="${name}">${name}</td>`.value;
  t.notMatch(out, /<script>/);
  t.equal(
    out,
    '<td title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</td>',
  );
  const inner = html`<b>${"<i>"}</b>`;
  t.equal(html`<p>${inner}</p>`.value, "<p><b>&lt;i&gt;</b></p>", "nested output is not escaped twice");
  t.equal(html`${["<", html`<br>`, 3, null, undefined, false]}`.value, "&lt;<br>3");
});

t.test("follow mode sends only what the previous tail did not end with", async (t) => {
  t.same(newLines([], ["a", "b"]), ["a", "b"]);
  t.same(newLines(["a", "b", "c"], ["b", "c", "d", "e"]), ["d", "e"], "the window moved");
  t.same(newLines(["a", "b"], ["a", "b"]), [], "nothing new");
  t.same(newLines(["x", "y"], ["a", "b"]), ["a", "b"], "a new container instance: all of it");
  t.same(newLines(["a", "a"], ["a", "a", "a"]), ["a"], "repeated lines: the longest overlap");
  t.same(splitLines("a\nb\n"), ["a", "b"]);
  t.same(splitLines(""), []);
});

t.test("log lines are blanked of Secret values and URL passwords", async (t) => {
  t.equal(redactLine("key MARKER-secret-key here", ["MARKER-secret-key"]), "key [REDACTED] here");
  t.equal(
    redactLine("meta redis://:pw123456@10.0.0.1:6379/1", []),
    "meta redis://:[REDACTED]@10.0.0.1:6379/1",
  );
});

t.test("after sign-in, only a path on this site", async (t) => {
  t.equal(safeNext("/pods/a/b?x=1"), "/pods/a/b?x=1");
  for (const bad of [
    "//evil.example/",
    "/\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "",
    undefined,
    3,
  ])
    t.equal(safeNext(bad), "/", String(bad));
});

t.test("object refs link to their pages", async (t) => {
  t.same(parseRef("pod/app -n shop"), { kind: "pod", name: "app", namespace: "shop" });
  t.same(parseRef("pv/pv-1"), { kind: "pv", name: "pv-1" });
  t.equal(hrefOf("pod/app -n shop"), "/pods/shop/app");
  t.equal(hrefOf("pv/pv-1"), "/volumes/pv-1");
  t.equal(hrefOf("pvc/data -n shop"), undefined);
  t.equal(parseRef("not a ref"), undefined);
});
