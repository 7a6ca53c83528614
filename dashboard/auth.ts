// Who may see a view. Port-forward mode (the default): whoever reaches the port, which listens on
// 127.0.0.1 unless told otherwise, sees what the dashboard's ServiceAccount reads. Token mode is
// token-auth.ts.
import type { FastifyInstance, FastifyRequest } from "fastify";

/** One permission a view needs, as a SubjectAccessReview's resourceAttributes (core group unless set). */
export interface Access {
  verb: "get" | "list" | "watch";
  resource: string;
  subresource?: string;
  group?: string;
  namespace?: string;
  name?: string;
}

export type Decision = { ok: true } | { ok: false; code: 401 | 403; message: string };

export interface Authorizer {
  check(req: FastifyRequest, access: readonly Access[]): Promise<Decision>;
  /** Extra routes (the login form). */
  routes?: (app: FastifyInstance) => void;
  /** Where a browser without credentials is sent. */
  loginPath?: string;
  /**
   * The signed-in user's permission check, for views that show only what the user may read
   * (scope.ts); undefined: everything the dashboard reads is shown (port-forward mode).
   */
  subject?(req: FastifyRequest): Promise<{ name: string; may: (a: Access) => Promise<boolean> } | undefined>;
}

export const portForwardAuthorizer: Authorizer = { check: async () => ({ ok: true }) };
