// The only way the console reaches the server: /api/v1, with the same contracts as every
// client. Tokens: the access token in memory, the pair in sessionStorage so a reload of
// the tab keeps the session; refreshed on its own before it expires.

export interface ErrorBody {
  code: string;
  message: string;
  fields?: Record<string, string>;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: ErrorBody) {
    super(body.message);
  }
  get code(): string {
    return this.body.code;
  }
  field(name: string): string | undefined {
    const fields = this.body.fields ?? {};
    if (fields[name]) return fields[name];
    const nested = Object.keys(fields).find((key) => key.startsWith(`${name}.`));
    return nested ? fields[nested] : undefined;
  }
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  refresh_expires_in: number;
  session_id: string;
}

const STORAGE_KEY = "crm.session";
const BASE = "/api/v1";

type Listener = (signedIn: boolean) => void;

/** The pair as kept in the tab, with when its access token expires (so a reload knows). */
type SavedPair = TokenPair & { expires_at?: number };

class Session {
  private pair: SavedPair | null = null;
  private timer: number | undefined;
  private refreshing: Promise<boolean> | null = null;
  private listeners: Listener[] = [];

  constructor() {
    try {
      const saved = sessionStorage.getItem(STORAGE_KEY);
      if (saved) this.pair = JSON.parse(saved) as SavedPair;
    } catch {
      this.pair = null;
    }
  }

  get signedIn(): boolean {
    return this.pair !== null;
  }

  get accessToken(): string | null {
    return this.pair?.access_token ?? null;
  }

  onChange(listener: Listener): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  start(pair: TokenPair): void {
    this.pair = { ...pair, expires_at: Date.now() + pair.expires_in * 1000 };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.pair));
    this.schedule(pair.expires_in, pair.expires_in);
    this.listeners.forEach((l) => l(true));
  }

  /** After a reload: the refresh is scheduled for what is left of the token's lifetime. */
  resume(): void {
    if (!this.pair) return;
    const left = ((this.pair.expires_at ?? 0) - Date.now()) / 1000;
    this.schedule(left, this.pair.expires_in);
  }

  end(): void {
    this.pair = null;
    sessionStorage.removeItem(STORAGE_KEY);
    window.clearTimeout(this.timer);
    this.listeners.forEach((l) => l(false));
  }

  private schedule(left: number, lifetime: number): void {
    window.clearTimeout(this.timer);
    // a minute early (or at 80% of a short lifetime), so a request never carries a stale token
    const lead = Math.min(60, lifetime * 0.2);
    const wait = left - lead;
    if (wait <= 0) void this.refresh();
    else this.timer = window.setTimeout(() => void this.refresh(), wait * 1000);
  }

  /** One refresh at a time; false (and the session ends) when the refresh token is refused. */
  refresh(): Promise<boolean> {
    if (!this.pair) return Promise.resolve(false);
    if (!this.refreshing) {
      const token = this.pair.refresh_token;
      this.refreshing = fetch(`${BASE}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      })
        .then(async (resp) => {
          if (resp.ok) {
            this.start((await resp.json()) as TokenPair);
            return true;
          }
          if (resp.status === 401 || resp.status === 403) this.end();
          return false;
        })
        .catch(() => false)
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }
}

export const session = new Session();

export type Query = Record<string, string | number | boolean | null | undefined | string[]>;

export interface RequestOptions {
  query?: Query;
  json?: unknown;
  body?: Blob | ArrayBuffer;
  contentType?: string;
  auth?: boolean;
  raw?: boolean;
}

export function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function send(method: string, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = {};
  let body: BodyInit | undefined;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    headers["Content-Type"] = options.contentType ?? "application/octet-stream";
    body = options.body;
  }
  if (options.auth !== false && session.accessToken) headers.Authorization = `Bearer ${session.accessToken}`;
  return fetch(`${BASE}${path}${queryString(options.query)}`, { method, headers, body });
}

async function errorOf(resp: Response): Promise<ApiError> {
  let body: ErrorBody = { code: "http_" + resp.status, message: resp.statusText || `HTTP ${resp.status}` };
  try {
    const parsed = (await resp.json()) as { error?: ErrorBody };
    if (parsed && parsed.error) body = parsed.error;
  } catch {
    // not JSON: a proxy's page; keep the status
  }
  const retry = resp.headers.get("Retry-After");
  if (retry && body.retry_after === undefined) body.retry_after = Number(retry);
  return new ApiError(resp.status, body);
}

/** A network failure reads as the API's own 503, so every screen shows one kind of error. */
function unreachable(): ApiError {
  return new ApiError(503, { code: "unreachable", message: "the server does not answer" });
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  let resp: Response;
  try {
    resp = await send(method, path, options);
    if (resp.status === 401 && options.auth !== false && session.signedIn) {
      if (await session.refresh()) resp = await send(method, path, options);
    }
  } catch {
    throw unreachable();
  }
  if (!resp.ok) {
    const error = await errorOf(resp);
    if (resp.status === 401 && options.auth !== false) session.end();
    throw error;
  }
  if (options.raw) return (await resp.blob()) as T;
  if (resp.status === 204) return undefined as T;
  return (await resp.json()) as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", path, { query }),
  post: <T>(path: string, json?: unknown, query?: Query) => request<T>("POST", path, { json, query }),
  put: <T>(path: string, json: unknown) => request<T>("PUT", path, { json }),
  patch: <T>(path: string, json: unknown) => request<T>("PATCH", path, { json }),
  del: <T>(path: string) => request<T>("DELETE", path),
  upload: <T>(path: string, file: Blob, query?: Query) =>
    request<T>("POST", path, { body: file, query, contentType: file.type || "application/octet-stream" }),
  blob: (path: string, query?: Query) => request<Blob>("GET", path, { query, raw: true }),
};

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Every page of a list (the org tree, roles, positions: small by nature). */
export async function all<T>(path: string, query: Query = {}): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await api.get<Page<T>>(path, { ...query, limit: 200, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** Saves a blob the API answered (a file behind the bearer token) under `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Polls a job until `done` says so; `onProgress` sees each state. */
export async function pollJob<T>(path: string, done: (job: T) => boolean, onProgress: (job: T) => void,
  intervalMs = 400, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await api.get<T>(path);
    onProgress(job);
    if (done(job)) return job;
    if (Date.now() > deadline) throw new ApiError(504, { code: "timeout", message: "the job did not finish" });
    await new Promise((resolve) => window.setTimeout(resolve, intervalMs));
  }
}
