// The shapes the console reads, as contracts/*.py answer them (only the fields it uses).

export type Scope = "none" | "own" | "department" | "all";

export interface Me {
  user: { id: string; login: string; full_name: string; timezone: string };
  rights: Record<string, Scope>;
  tenant_id: string;
  session_id: string;
}

export interface UserPosition {
  id: string;
  title: string;
  department_id: string;
  department_name: string;
  role_id: string;
  role_name: string;
}

export interface User {
  id: string;
  login: string;
  full_name: string;
  email: string | null;
  timezone: string;
  timezone_offset: string;
  active: boolean;
  sip_enabled: boolean;
  position_ids: string[];
  positions: UserPosition[];
}

export interface Department {
  id: string;
  name: string;
  parent_id: string | null;
  is_root: boolean;
}

export interface Position extends UserPosition {
  holders: number;
}

export interface Role {
  id: string;
  name: string;
  rights: Record<string, Scope>;
  builtin: string | null;
}

export interface Right {
  code: string;
  title: string;
  scopes: Scope[];
}

export interface Registration {
  state: "off" | "registering" | "registered" | "failed";
  reason: string | null;
  expires_at: string | null;
}

export interface SipAccount {
  user_id: string;
  login: string;
  domain: string;
  port: number;
  mango_username: string | null;
  password_set: boolean;
  registration: Registration;
}

export interface SipCheck {
  ok: boolean;
  status: number | null;
  reason: string | null;
  detail?: string | null;
  elapsed_ms: number;
}

export type Encryption = "ssl" | "starttls" | "none";
export type SmtpAuth = "same_as_incoming" | "special" | "none";

export interface PresetServer {
  host: string;
  port: number;
  encryption: Encryption;
}

export interface MailPreset {
  id: "gmail" | "yandex" | "mailru";
  title: string;
  domains: string[];
  imap: PresetServer;
  smtp: PresetServer;
  smtp_auth: SmtpAuth;
  login: string;
  timeout_min: number;
  poll_every_min: number;
  app_password_hint: string;
}

export interface MailAccount {
  id: string;
  user_id: string;
  name: string;
  email: string;
  preset: string | null;
  password_set: boolean;
  imap: { host: string; port: number; encryption: Encryption; login: string };
  smtp: {
    host: string; port: number; encryption: Encryption; auth: SmtpAuth; login: string | null;
    password_set: boolean; require_secure_auth: boolean;
  };
  timeout_min: number;
  poll_every_min: number;
  sent_folder: string | null;
  active: boolean;
  is_default: boolean;
}

export interface SideResult {
  ok: boolean;
  error: string | null;
  reason?: string | null;
  elapsed_ms: number;
}

export interface MailCheck {
  imap: SideResult;
  smtp: SideResult;
}

export interface MailFolder {
  name: string;
  flags: string[];
  special_use: string | null;
}

export interface MailStatus {
  state: "never" | "ok" | "error" | "quota_exceeded" | "paused";
  last_poll_at: string | null;
  last_success_at: string | null;
  last_error: string | null;
  next_poll_at: string | null;
  messages_stored: number;
}

export interface ExchangeVersion {
  id: string;
  title: string;
  description: string;
  import_objects: string[];
  export_objects: string[];
  has_rules: boolean;
}

export interface ExchangeSettings {
  version: string;
  file_name: string | null;
  import_objects: string[];
  export_objects: Record<string, { since: string | null; until: string | null }>;
  overwrite: boolean;
}

export interface ExchangeJob {
  id: string;
  direction: string;
  status: string;
  read: number;
  created: number;
  updated: number;
  skipped: number;
  rejected: number;
  deactivated: number;
  progress: number;
  error: string | null;
  download_url: string | null;
  file_name: string | null;
}

export interface ExchangeLogEntry {
  id: number;
  job_id: string | null;
  at: string;
  level: string;
  message: string;
  path: string | null;
}

export interface ImportField {
  name: string;
  title: string;
  required: boolean;
  many: boolean;
}

export interface ImportMapping {
  entity: string;
  format: "csv" | "xlsx";
  encoding: string | null;
  delimiter: string | null;
  headers: string[];
  mapping: Record<string, string>;
  unmapped: string[];
  missing: string[];
  fields: ImportField[];
  sample: string[][];
}

export interface ImportJob {
  id: string;
  entity: string;
  status: "queued" | "running" | "done" | "failed" | "reverting" | "reverted";
  dry_run: boolean;
  read: number;
  total: number;
  created: number;
  updated: number;
  skipped: number;
  duplicates: number;
  rejected: number;
  progress: number;
  errors_url: string | null;
  error: string | null;
  reverted: { deleted: number; restored: number; left: number } | null;
}

export interface JournalEntry {
  id: string;
  at: string;
  actor: { id: string | null; login: string | null; full_name: string | null } | null;
  source: string;
  entity: string;
  entity_id: string;
  action: string;
  changes: Record<string, unknown>;
}
