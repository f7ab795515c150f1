// The console's small kit: fields with their API errors, the error banner, dialogs, progress.
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { ApiError } from "./api";
import { hasKey, t } from "./i18n";

let nextId = 0;
export function useId(prefix: string): string {
  const ref = useRef<string>();
  if (!ref.current) ref.current = `${prefix}-${++nextId}`;
  return ref.current;
}

/** What an error means to the person at the screen. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return t("error.generic", { message: String(error) });
  const { status, body } = error;
  if (body.code === "unreachable") return t("error.unreachable");
  if (status === 503) return t("error.unavailable", { service: String(body.service ?? "API") });
  if (status === 403) return body.code === "forbidden" ? t("error.forbidden") : body.message;
  if (status === 404) return t("error.notFound");
  if (status === 422) return t("error.validation");
  if (status === 409) {
    const known = `conflict.${body.code}`;
    if (hasKey(known)) return t(known, Object.fromEntries(Object.entries(body).map(([k, v]) => [k, String(v)])));
    return t("error.conflict", { message: body.message });
  }
  if (status === 413 || body.code === "quota_exceeded") return t("error.quota", { message: body.message });
  return t("error.generic", { message: body.message });
}

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  const fields = error instanceof ApiError && error.status === 422 ? error.body.fields ?? {} : {};
  const rest = Object.entries(fields).filter(([name]) => !document.querySelector(`[data-field="${CSS.escape(name)}"]`));
  return (
    <div class="banner error" role="alert">
      <p>{describeError(error)}</p>
      {rest.length > 0 && (
        <ul>
          {rest.map(([name, reason]) => (
            <li key={name}><code>{name}</code>: {reason}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Notice({ children, kind = "info" }: { children: ComponentChildren; kind?: "info" | "ok" | "warn" }) {
  return <div class={`banner ${kind}`} role="status">{children}</div>;
}

interface FieldProps {
  label: string;
  name: string;
  error?: unknown;
  hint?: ComponentChildren;
  children: (id: string, describedBy: string | undefined, invalid: boolean) => JSX.Element;
}

/** A labelled control; the API's 422 reason for `name` shows under it. */
export function Field({ label, name, error, hint, children }: FieldProps) {
  const id = useId(name.replace(/\W/g, "-"));
  const reason = error instanceof ApiError && error.status === 422 ? error.field(name) : undefined;
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = reason ? `${id}-err` : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(" ") || undefined;
  return (
    <div class={`field${reason ? " invalid" : ""}`} data-field={name}>
      <label for={id}>{label}</label>
      {children(id, describedBy, Boolean(reason))}
      {hint && <div class="hint" id={hintId}>{hint}</div>}
      {reason && <div class="field-error" id={errId} role="alert">{reason}</div>}
    </div>
  );
}

interface TextFieldProps {
  label: string;
  name: string;
  value: string;
  onInput: (value: string) => void;
  error?: unknown;
  hint?: ComponentChildren;
  type?: string;
  autocomplete?: string;
  required?: boolean;
  disabled?: boolean;
  inputMode?: "numeric" | "text" | "email";
  suffix?: string;
}

export function TextField(props: TextFieldProps) {
  return (
    <Field label={props.label} name={props.name} error={props.error} hint={props.hint}>
      {(id, describedBy, invalid) => (
        <span class="control">
          <input id={id} name={props.name} type={props.type ?? "text"} value={props.value}
            autocomplete={props.autocomplete} required={props.required} disabled={props.disabled}
            inputMode={props.inputMode} aria-describedby={describedBy} aria-invalid={invalid}
            onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)} />
          {props.suffix && <span class="suffix">{props.suffix}</span>}
        </span>
      )}
    </Field>
  );
}

export function Checkbox({ label, checked, onChange, name, disabled }: {
  label: string; checked: boolean; onChange: (value: boolean) => void; name: string; disabled?: boolean;
}) {
  const id = useId(name);
  return (
    <div class="checkbox" data-field={name}>
      <input id={id} type="checkbox" name={name} checked={checked} disabled={disabled}
        onChange={(e) => onChange((e.currentTarget as HTMLInputElement).checked)} />
      <label for={id}>{label}</label>
    </div>
  );
}

export function SelectField({ label, name, value, onChange, options, error, hint, disabled }: {
  label: string; name: string; value: string; onChange: (value: string) => void;
  options: { value: string; label: string; disabled?: boolean }[]; error?: unknown; hint?: ComponentChildren;
  disabled?: boolean;
}) {
  return (
    <Field label={label} name={name} error={error} hint={hint}>
      {(id, describedBy, invalid) => (
        <select id={id} name={name} value={value} disabled={disabled} aria-describedby={describedBy}
          aria-invalid={invalid} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value)}>
          {options.map((o) => <option key={o.value} value={o.value} disabled={o.disabled}>{o.label}</option>)}
        </select>
      )}
    </Field>
  );
}

export function Progress({ value, label }: { value: number; label: string }) {
  return (
    <div class="progress">
      <progress max={100} value={value} aria-label={label} />
      <span>{label}</span>
    </div>
  );
}

/** A modal message (the guide's warning with «ОК»); focus goes to its button. */
export function Dialog({ title, children, onClose, actions }: {
  title: string; children: ComponentChildren; onClose: () => void; actions?: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const titleId = useId("dialog");
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      <h2 id={titleId}>{title}</h2>
      <div>{children}</div>
      <div class="actions">
        {actions}
        <button type="button" class="primary" onClick={() => { ref.current?.close(); onClose(); }}>{t("common.ok")}</button>
      </div>
    </dialog>
  );
}

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} — ${t("app.title")}`;
  }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-header">
        <h1 id="page-title">{title}</h1>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function formatSeconds(total: number): string {
  const seconds = Math.max(0, Math.ceil(total));
  if (seconds < 60) return t("time.seconds", { n: seconds });
  return t("time.minutes", { m: Math.floor(seconds / 60), s: seconds % 60 });
}
