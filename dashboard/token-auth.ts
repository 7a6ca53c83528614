// Token mode (`--auth token`): the user presents their own Kubernetes token (Authorization: Bearer,
// or the login form, which keeps it in an HttpOnly, SameSite=Strict cookie). The API server says who
// it is (TokenReview) and whether that user may read what a view shows (SubjectAccessReview for each
// permission the view needs), so a user sees only what RBAC lets them see. Decisions are remembered
// 30 s, keyed by a hash of the token (the token itself is never logged or stored beyond the cookie).
import { createHash } from "node:crypto";
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  type KubeConfig,
  type V1UserInfo,
} from "@kubernetes/client-node";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Access, Authorizer, Decision } from "./auth.ts";
import { html } from "./html.ts";
import { layout } from "./pages.ts";

export const cookieName = "jfs-dashboard-token";
const ttlMs = 30_000;

function tokenOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith("Bearer ")) return auth.slice(7).trim() || undefined;
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === cookieName) return decodeURIComponent(v.join("=")) || undefined;
  }
  return undefined;
}

/** A relative path on this site only (no scheme, no `//host`): where the login form may send the user. */
export function safeNext(next: unknown): string {
  return typeof next === "string" && /^\/(?![/\\])/.test(next) ? next : "/";
}

export function tokenAuthorizer(kc: KubeConfig, o: { secureCookie: boolean; ttlMs?: number }): Authorizer {
  const authn = kc.makeApiClient(AuthenticationV1Api);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const ttl = o.ttlMs ?? ttlMs;
  const users = new Map<string, { user: V1UserInfo | undefined; until: number }>();
  const decisions = new Map<string, { allowed: boolean; until: number }>();
  const prune = (m: Map<string, { until: number }>) => {
    if (m.size < 10_000) return;
    const now = Date.now();
    for (const [k, v] of m) if (v.until < now) m.delete(k);
  };

  async function whoIs(token: string): Promise<V1UserInfo | undefined> {
    const key = createHash("sha256").update(token).digest("hex");
    const hit = users.get(key);
    if (hit && hit.until > Date.now()) return hit.user;
    const r = await authn.createTokenReview({ body: { spec: { token } } });
    const user = r.status?.authenticated ? r.status.user : undefined;
    prune(users);
    users.set(key, { user, until: Date.now() + ttl });
    return user;
  }

  async function may(token: string, user: V1UserInfo, a: Access): Promise<boolean> {
    const key = `${createHash("sha256").update(token).digest("hex")} ${JSON.stringify(a)}`;
    const hit = decisions.get(key);
    if (hit && hit.until > Date.now()) return hit.allowed;
    const r = await authz.createSubjectAccessReview({
      body: {
        spec: {
          ...(user.username ? { user: user.username } : {}),
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.groups ? { groups: user.groups } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
          resourceAttributes: {
            verb: a.verb,
            resource: a.resource,
            group: a.group ?? "",
            ...(a.subresource ? { subresource: a.subresource } : {}),
            ...(a.namespace ? { namespace: a.namespace } : {}),
            ...(a.name ? { name: a.name } : {}),
          },
        },
      },
    });
    const allowed = r.status?.allowed === true;
    prune(decisions);
    decisions.set(key, { allowed, until: Date.now() + ttl });
    return allowed;
  }

  const describe = (a: Access) =>
    `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ""}${a.namespace ? ` in namespace ${a.namespace}` : " at the cluster scope"}`;

  return {
    loginPath: "/login",
    async subject(req) {
      const token = tokenOf(req);
      const user = token ? await whoIs(token) : undefined;
      if (!token || !user) return undefined;
      return { name: user.username ?? "this user", may: (a: Access) => may(token, user, a) };
    },
    async check(req, access): Promise<Decision> {
      const token = tokenOf(req);
      if (!token)
        return {
          ok: false,
          code: 401,
          message: "give a Kubernetes token (Authorization: Bearer, or sign in)",
        };
      const user = await whoIs(token);
      if (!user)
        return {
          ok: false,
          code: 401,
          message: "the token was not accepted by the API server (TokenReview)",
        };
      for (const a of access)
        if (!(await may(token, user, a)))
          return { ok: false, code: 403, message: `${user.username ?? "this user"} may not ${describe(a)}` };
      return { ok: true };
    },
    routes(app: FastifyInstance) {
      app.addContentTypeParser(
        "application/x-www-form-urlencoded",
        { parseAs: "string", bodyLimit: 16 * 1024 },
        (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      app.get<{ Querystring: { next?: string; failed?: string } }>("/login", async (req, reply) =>
        reply.type("text/html; charset=utf-8").send(
          layout(
            "Sign in",
            html`<h1>Sign in</h1>${req.query.failed ? html`<p class="failure">The API server did not accept that token.</p>` : ""}
<form method="post" action="/login"><input type="hidden" name="next" value="${safeNext(req.query.next)}">
<p><label>Kubernetes token <input type="password" name="token" autocomplete="off" size="60" required></label></p>
<p><button type="submit">Sign in</button></p></form>
<p>For example <code>kubectl create token NAME -n NAMESPACE</code>. What you see is what your RBAC lets you read.</p>`,
          ),
        ),
      );
      app.post<{ Body: { token?: string; next?: string } }>("/login", async (req, reply) => {
        const token = String(req.body?.token ?? "").trim();
        const next = safeNext(req.body?.next);
        const user = token ? await whoIs(token).catch(() => undefined) : undefined;
        if (!user) return reply.redirect(`/login?failed=1&next=${encodeURIComponent(next)}`, 303);
        reply.header(
          "set-cookie",
          `${cookieName}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${o.secureCookie ? "; Secure" : ""}`,
        );
        return reply.redirect(next, 303);
      });
      app.post("/logout", async (_req, reply) => {
        reply.header("set-cookie", `${cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
        return reply.redirect("/login", 303);
      });
    },
  };
}
