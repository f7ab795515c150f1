// The client's own rules: the same password policy as contracts/passwords.py (the API
// still decides), the Mango Office username split, and time-zone offsets.

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

export type PasswordProblem = "too_short" | "too_long" | "no_digit" | "no_upper" | "no_lower";

/** Every rule the password breaks (empty when the API would accept it). Lengths count
 * code points, and the character classes are Unicode's, as Python's str methods do. */
export function passwordProblems(password: string): PasswordProblem[] {
  const problems: PasswordProblem[] = [];
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) problems.push("too_short");
  if (length > PASSWORD_MAX_LENGTH) problems.push("too_long");
  if (!/\p{Nd}/u.test(password)) problems.push("no_digit");
  if (!/\p{Lu}/u.test(password)) problems.push("no_upper");
  if (!/\p{Ll}/u.test(password)) problems.push("no_lower");
  return problems;
}

export interface MangoParts {
  login: string;
  domain: string;
}

/** `user@mycompany.mangosip.ru` → login `user`, domain `mycompany.mangosip.ru` (the guide's
 * rule: the login is the part before "@", the domain the part after). Null when it is not
 * of that form. A `sip:` prefix and surrounding spaces are tolerated. */
export function splitMango(username: string): MangoParts | null {
  const text = username.trim().replace(/^sips?:/i, "");
  const at = text.lastIndexOf("@");
  if (at <= 0 || at === text.length - 1) return null;
  const login = text.slice(0, at);
  const domain = text.slice(at + 1).toLowerCase();
  if (/[\s@]/.test(login)) return null;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(domain)) return null;
  return { login, domain };
}

/** The zone's UTC offset at `at`, as "UTC+03:00" ("UTC" for zero). */
export function utcOffset(timeZone: string, at: Date = new Date()): string {
  const minutes = offsetMinutes(timeZone, at);
  if (minutes === 0) return "UTC";
  const sign = minutes > 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `UTC${sign}${hh}:${mm}`;
}

export function offsetMinutes(timeZone: string, at: Date = new Date()): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return Math.round((asUtc - Math.floor(at.getTime() / 1000) * 1000) / 60000);
}

/** Every zone the browser knows, ordered by current offset then name. */
export function timeZones(at: Date = new Date()): { id: string; offset: string; minutes: number }[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  const ids = intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : ["Europe/Moscow", "UTC"];
  if (!ids.includes("UTC")) ids.push("UTC");
  return ids
    .map((id) => ({ id, minutes: offsetMinutes(id, at), offset: utcOffset(id, at) }))
    .sort((a, b) => a.minutes - b.minutes || a.id.localeCompare(b.id));
}

export interface TreeNode<T> {
  item: T;
  depth: number;
}

/** Items with `id` and `parent_id` in tree order (parents before children, siblings by name). */
export function treeOrder<T extends { id: string; parent_id: string | null; name: string }>(items: T[]): TreeNode<T>[] {
  const children = new Map<string | null, T[]>();
  const ids = new Set(items.map((i) => i.id));
  for (const item of items) {
    const parent = item.parent_id && ids.has(item.parent_id) ? item.parent_id : null;
    const list = children.get(parent) ?? [];
    list.push(item);
    children.set(parent, list);
  }
  const out: TreeNode<T>[] = [];
  const walk = (parent: string | null, depth: number) => {
    for (const item of (children.get(parent) ?? []).sort((a, b) => a.name.localeCompare(b.name, "ru"))) {
      out.push({ item, depth });
      walk(item.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

/** True when `candidate` is `id` itself or one of its descendants (a move there would make a loop). */
export function isWithin<T extends { id: string; parent_id: string | null }>(items: T[], id: string, candidate: string): boolean {
  const byId = new Map(items.map((i) => [i.id, i]));
  let cursor: string | null = candidate;
  const seen = new Set<string>();
  while (cursor && !seen.has(cursor)) {
    if (cursor === id) return true;
    seen.add(cursor);
    cursor = byId.get(cursor)?.parent_id ?? null;
  }
  return false;
}
