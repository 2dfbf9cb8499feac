// A typed client of user-service: openapi-fetch over the types generated from /openapi.json
// (src/schema.d.ts, `npm run generate`), plus a small hand-written layer for what the
// generated types cannot say: ETag/If-Match on preferences and RFC 9457 problem documents
// thrown as a typed error.
//
//   const api = createUserServiceClient({ baseUrl, getToken: () => session.getToken() });
//   const prefs = await api.getPreferences();             // { value, etag }
//   await api.updatePreferences({ ui: { theme: "dark" } }, { ifMatch: prefs.etag });
//
// `api.raw` is the plain openapi-fetch client for every other route, fully typed too.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };
export type Schemas = components["schemas"];
export type User = Schemas["UserResource"];
export type UserUpdate = Schemas["UpdateUser"];
export type Preferences = Schemas["PreferencesDocument"];
export type Integration = Schemas["IntegrationResource"];
export type Provider = Schemas["ProviderItem"];
export type Authorization = Schemas["AuthorizeAnswer"];
export type ProviderToken = Schemas["TokenAnswer"];

/**
 * Every `type` the service answers in a problem document (crates/domain/src/error.rs; the
 * client's check fails when that table gains a code this union lacks).
 */
export type ProblemType =
  | "invalid_request"
  | "unauthorized"
  | "invalid_signature"
  | "forbidden"
  | "insufficient_scope"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "reauthorization_required"
  | "precondition_failed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "validation_error"
  | "rate_limited"
  | "internal_error"
  | "provider_error"
  | "service_unavailable"
  | "provider_unreachable"
  | "provider_timeout";

/**
 * An RFC 9457 problem document, with its `type` narrowed to the known codes. Written out
 * rather than taken from `Schemas["Problem"]`: the generated type intersects the fields with
 * the flattened extension object (`Record<string, never>`), which makes every field `never`.
 */
export interface Problem {
  type: ProblemType;
  /** Short summary of the error type. */
  title: string;
  /** The HTTP status. */
  status: number;
  /** What went wrong this time. */
  detail?: string | null;
  /** The request path. */
  instance: string;
  /** Also in the `x-request-id` header and the service's log line. */
  request_id: string;
  /** RFC 3339, UTC. */
  timestamp: string;
  /** With `validation_error`: each invalid field by path (`ui.theme`). */
  errors?: Schemas["FieldErrorSchema"][];
  /** With `insufficient_scope`: the scopes the token lacks. */
  missing_scopes?: string[];
}

/** A non-2xx answer. `problem` is the parsed problem document; `status` the HTTP status. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly status: number;
  /** Seconds to wait, from `Retry-After` (429, 503), when sent. */
  readonly retryAfter: number | undefined;

  constructor(problem: Problem, response: Response) {
    super(`${problem.status} ${problem.type}: ${problem.detail ?? problem.title}`);
    this.name = "ProblemError";
    this.problem = problem;
    this.status = response.status;
    const retry = response.headers.get("Retry-After");
    this.retryAfter = retry === null ? undefined : Number(retry);
  }

  get type(): ProblemType {
    return this.problem.type;
  }
}

/** Whether `e` is a problem of the given type, e.g. `isProblem(e, "precondition_failed")`. */
export function isProblem(e: unknown, type?: ProblemType): e is ProblemError {
  return e instanceof ProblemError && (type === undefined || e.type === type);
}

/** A document with the entity tag it was read or written at (send it back as `ifMatch`). */
export interface Versioned<T> {
  value: T;
  etag: string;
}

/** Every field optional, all the way down: a partial preferences update. */
export type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> | null } : T;
export type PreferencesUpdate = DeepPartial<Omit<Preferences, "schema_version" | "version" | "updated_at">>;

export interface WriteOptions {
  /** The `etag` of the last read: a 412 `precondition_failed` ProblemError when stale. */
  ifMatch?: string;
}

export interface ClientOptions {
  /** The service's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /**
   * The credential for each request: a user's Clerk session token (with Clerk:
   * `() => getToken()` from `useAuth()`), or a service key (`usk_…`) on a back end.
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** A fetch implementation (tests, server runtimes); the global one by default. */
  fetch?: typeof globalThis.fetch;
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

async function unwrap<T>(call: Promise<Answer<T>>): Promise<{ data: T; response: Response }> {
  const { data, error, response } = await call;
  if (!response.ok) throw toProblemError(error, response);
  return { data: data as T, response };
}

function toProblemError(body: unknown, response: Response): ProblemError {
  const looksLikeProblem = typeof body === "object" && body !== null && "type" in body && "status" in body;
  const problem: Problem = looksLikeProblem
    ? (body as Problem)
    : {
        // Not a problem document (a proxy in between): keep the status honest.
        type: response.status >= 500 ? "service_unavailable" : "invalid_request",
        title: response.statusText || "Unexpected answer",
        status: response.status,
        detail: typeof body === "string" ? body.slice(0, 200) : undefined,
        instance: new URL(response.url || "http://unknown/").pathname,
        request_id: response.headers.get("x-request-id") ?? "",
        timestamp: new Date().toISOString(),
      };
  return new ProblemError(problem, response);
}

function etagOf(response: Response): string {
  const etag = response.headers.get("ETag");
  if (etag === null) {
    throw new Error("no ETag header: is ETag in the service's CORS expose list?");
  }
  return etag;
}

const ifMatch = (o?: WriteOptions) => (o?.ifMatch ? { "If-Match": o.ifMatch } : {});

/** The client: typed helpers for the front end's routes, and `raw` for everything else. */
export function createUserServiceClient(options: ClientOptions) {
  const raw: Client<paths> = createClient<paths>({ baseUrl: options.baseUrl, fetch: options.fetch });
  raw.use({
    async onRequest({ request }) {
      const token = await options.getToken?.();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  const user = (ref: string) => ({ params: { path: { user_ref: ref } } });
  const integ = (ref: string, provider: string) => ({ params: { path: { user_ref: ref, provider } } });

  return {
    raw,

    async getUser(ref = "me"): Promise<User> {
      return (await unwrap(raw.GET("/users/{user_ref}", user(ref)))).data;
    },

    async updateUser(patch: UserUpdate, ref = "me"): Promise<User> {
      return (await unwrap(raw.PATCH("/users/{user_ref}", { ...user(ref), body: patch }))).data;
    },

    async getPreferences(ref = "me"): Promise<Versioned<Preferences>> {
      const { data, response } = await unwrap(raw.GET("/users/{user_ref}/preferences", user(ref)));
      return { value: data, etag: etagOf(response) };
    },

    /** Merges `update` into the document (only the keys sent change). */
    async updatePreferences(
      update: PreferencesUpdate,
      opts?: WriteOptions & { ref?: string },
    ): Promise<Versioned<Preferences>> {
      const { data, response } = await unwrap(
        raw.PUT("/users/{user_ref}/preferences", {
          ...user(opts?.ref ?? "me"),
          body: update as Record<string, never>,
          headers: ifMatch(opts),
        }),
      );
      return { value: data, etag: etagOf(response) };
    },

    async listProviders(): Promise<Provider[]> {
      return (await unwrap(raw.GET("/providers"))).data.items;
    },

    async listIntegrations(ref = "me"): Promise<Integration[]> {
      return (await unwrap(raw.GET("/users/{user_ref}/integrations", user(ref)))).data.items;
    },

    /** Step 1 of connecting: send the browser to `authorization_url`. */
    async authorize(provider: string, body: Schemas["AuthorizeBody"], ref = "me"): Promise<Authorization> {
      return (
        await unwrap(raw.POST("/users/{user_ref}/integrations/{provider}/authorize", { ...integ(ref, provider), body }))
      ).data;
    },

    /** Step 2, on the callback page: hand the provider's `code` and `state` back. */
    async complete(provider: string, body: Schemas["CompleteBody"], ref = "me"): Promise<Integration> {
      return (await unwrap(raw.POST("/users/{user_ref}/integrations/{provider}", { ...integ(ref, provider), body })))
        .data;
    },

    async disconnect(provider: string, ref = "me"): Promise<void> {
      await unwrap(raw.DELETE("/users/{user_ref}/integrations/{provider}", integ(ref, provider)));
    },

    /** Back ends, with a `tokens:read` service key: the user's valid provider token. */
    async getProviderToken(body: Schemas["TokenGetBody"]): Promise<ProviderToken> {
      return (await unwrap(raw.POST("/internal/tokens/get", { body }))).data;
    },
  };
}

export type UserServiceClient = ReturnType<typeof createUserServiceClient>;
