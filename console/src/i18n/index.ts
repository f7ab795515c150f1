import { ru, type MessageKey } from "./ru";

export type { MessageKey };

const catalogue: Record<MessageKey, string> = ru;

/** The catalogue's text for `key`, with {name} placeholders filled from `vars`. */
export function t(key: MessageKey, vars: Record<string, string | number> = {}): string {
  return catalogue[key].replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

export function hasKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(catalogue, key);
}

/** The catalogue's word for a code the API answers (`level.error`…), else the code itself. */
export function label(prefix: string, code: string): string {
  const key = `${prefix}.${code}`;
  return hasKey(key) ? catalogue[key] : code;
}

const dateTime = new Intl.DateTimeFormat("ru-RU", { dateStyle: "short", timeStyle: "medium" });

export function formatTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : "—";
}
