// «Создание учетной записи» / «Редактирование учетной записи»: a preset (Gmail, Яндекс,
// Mail.ru) shows its logo and hides the fixed fields; otherwise the IMAP and SMTP fields.
// «Проверить» answers per side, «Загрузить папки» fills the sent-folder choice.
import { useEffect, useState } from "preact/hooks";
import { all, api, ApiError } from "../api";
import { navigate } from "../app";
import { formatTime, t } from "../i18n";
import type { Encryption, MailAccount, MailCheck, MailFolder, MailPreset, MailStatus, SmtpAuth } from "../types";
import { Checkbox, ErrorBanner, Notice, Page, SelectField, TextField } from "../ui";

interface Form {
  active: boolean;
  is_default: boolean;
  name: string;
  email: string;
  password: string;
  preset: string;
  imap_host: string;
  imap_encryption: Encryption;
  imap_port: string;
  imap_login: string;
  smtp_host: string;
  smtp_encryption: Encryption;
  smtp_port: string;
  smtp_auth: SmtpAuth;
  smtp_login: string;
  smtp_password: string;
  require_secure_auth: boolean;
  timeout_min: string;
  poll_every_min: string;
  sent_folder: string;
}

const EMPTY: Form = {
  active: true, is_default: false, name: "", email: "", password: "", preset: "",
  imap_host: "", imap_encryption: "ssl", imap_port: "993", imap_login: "",
  smtp_host: "", smtp_encryption: "ssl", smtp_port: "465", smtp_auth: "same_as_incoming", smtp_login: "",
  smtp_password: "", require_secure_auth: false, timeout_min: "5", poll_every_min: "5", sent_folder: "",
};

const ENCRYPTIONS: Encryption[] = ["ssl", "starttls", "none"];
const AUTHS: SmtpAuth[] = ["same_as_incoming", "special", "none"];

function fromAccount(a: MailAccount): Form {
  return {
    active: a.active, is_default: a.is_default, name: a.name, email: a.email, password: "", preset: a.preset ?? "",
    imap_host: a.imap.host, imap_encryption: a.imap.encryption, imap_port: String(a.imap.port), imap_login: a.imap.login,
    smtp_host: a.smtp.host, smtp_encryption: a.smtp.encryption, smtp_port: String(a.smtp.port), smtp_auth: a.smtp.auth,
    smtp_login: a.smtp.login ?? "", smtp_password: "", require_secure_auth: a.smtp.require_secure_auth,
    timeout_min: String(a.timeout_min), poll_every_min: String(a.poll_every_min), sent_folder: a.sent_folder ?? "",
  };
}

function bodyOf(form: Form, creating: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {
    active: form.active, is_default: form.is_default, name: form.name.trim(), email: form.email.trim(),
    timeout_min: Number(form.timeout_min), poll_every_min: Number(form.poll_every_min),
    sent_folder: form.sent_folder || null, preset: form.preset || null,
  };
  if (form.password || creating) body.password = form.password;
  if (!form.preset) {
    body.imap = {
      host: form.imap_host.trim(), port: Number(form.imap_port), encryption: form.imap_encryption,
      login: form.imap_login.trim() || null,
    };
    const smtp: Record<string, unknown> = {
      host: form.smtp_host.trim(), port: Number(form.smtp_port), encryption: form.smtp_encryption,
      auth: form.smtp_auth, require_secure_auth: form.require_secure_auth,
    };
    if (form.smtp_auth === "special") {
      smtp.login = form.smtp_login.trim() || null;
      if (form.smtp_password) smtp.password = form.smtp_password;
    }
    body.smtp = smtp;
  }
  return body;
}

export function MailAccountForm({ userId, accountId }: { userId: string; accountId: string | null }) {
  const [form, setForm] = useState<Form>(EMPTY);
  const [account, setAccount] = useState<MailAccount | null>(null);
  const [presets, setPresets] = useState<MailPreset[]>([]);
  const [folders, setFolders] = useState<MailFolder[]>([]);
  const [check, setCheck] = useState<MailCheck | null>(null);
  const [status, setStatus] = useState<MailStatus | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<"" | "save" | "check" | "folders">("");
  const set = <K extends keyof Form>(key: K) => (value: Form[K]) => setForm((f) => ({ ...f, [key]: value }));

  const loadStatus = async (id: string) => {
    try {
      setStatus(await api.get<MailStatus>(`/users/${userId}/mail-accounts/${id}/status`));
    } catch {
      setStatus(null);
    }
  };

  useEffect(() => {
    (async () => {
      try {
        setPresets(await all<MailPreset>("/mail/presets"));
        if (accountId) {
          const value = await api.get<MailAccount>(`/users/${userId}/mail-accounts/${accountId}`);
          setAccount(value);
          setForm(fromAccount(value));
          if (value.sent_folder) setFolders([{ name: value.sent_folder, flags: [], special_use: null }]);
          await loadStatus(value.id);
        }
      } catch (err) {
        setError(err);
      }
    })();
  }, [userId, accountId]);

  const preset = presets.find((p) => p.id === form.preset) ?? null;

  const choosePreset = (id: string) => {
    const chosen = presets.find((p) => p.id === id);
    setForm((f) => (chosen
      ? { ...f, preset: id, timeout_min: String(chosen.timeout_min), poll_every_min: String(chosen.poll_every_min) }
      : { ...f, preset: "" }));
  };

  /** Saves and returns the account (the check and the folder list work on a saved one). */
  const persist = async (): Promise<MailAccount | null> => {
    setError(null);
    try {
      const saved = account
        ? await api.patch<MailAccount>(`/users/${userId}/mail-accounts/${account.id}`, bodyOf(form, false))
        : await api.post<MailAccount>(`/users/${userId}/mail-accounts`, bodyOf(form, true));
      setAccount(saved);
      setForm((f) => ({ ...fromAccount(saved), sent_folder: f.sent_folder || saved.sent_folder || "" }));
      return saved;
    } catch (err) {
      setError(err);
      return null;
    }
  };

  const save = async () => {
    setBusy("save");
    const saved = await persist();
    setBusy("");
    if (saved) navigate(`/users/${userId}`);
  };

  // A new account is checked and its folders listed from the form as typed, nothing stored;
  // a saved one is saved first (its stored password is used when the field is left empty).
  const runCheck = async () => {
    setBusy("check");
    setCheck(null);
    setError(null);
    try {
      if (!account) {
        setCheck(await api.post<MailCheck>(`/users/${userId}/mail-accounts/check`, bodyOf(form, true)));
      } else {
        const saved = await persist();
        if (saved) {
          setCheck(await api.post<MailCheck>(`/users/${userId}/mail-accounts/${saved.id}/check`));
          await loadStatus(saved.id);
        }
      }
    } catch (err) {
      setError(err);
    }
    setBusy("");
  };

  const loadFolders = async () => {
    setBusy("folders");
    setError(null);
    try {
      let items: MailFolder[] | null = null;
      if (!account) {
        items = (await api.post<{ items: MailFolder[] }>(`/users/${userId}/mail-accounts/folders`, bodyOf(form, true))).items;
      } else {
        const saved = await persist();
        if (saved) items = await all<MailFolder>(`/users/${userId}/mail-accounts/${saved.id}/folders`);
      }
      if (items) {
        setFolders(items);
        const sent = items.find((f) => f.special_use === "\\Sent");
        setForm((f) => ({ ...f, sent_folder: f.sent_folder || sent?.name || "" }));
        setNotice(t("mail.foldersLoaded", { n: items.length }));
      }
    } catch (err) {
      setError(err);
    }
    setBusy("");
  };

  const remove = async () => {
    if (!account || !window.confirm(t("common.confirmDelete", { name: account.name }))) return;
    try {
      await api.del(`/users/${userId}/mail-accounts/${account.id}`);
      navigate(`/users/${userId}`);
    } catch (err) {
      setError(err);
    }
  };

  const side = (key: "imap" | "smtp") => {
    if (!check) return null;
    const result = check[key];
    const name = t(`mail.side.${key}`);
    return (
      <li class={result.ok ? "ok" : "error"} data-testid={`check-${key}`}>
        {result.ok ? t("mail.side.ok", { side: name, ms: result.elapsed_ms })
          : t("mail.side.fail", { side: name, error: result.error ?? result.reason ?? "?", ms: result.elapsed_ms })}
      </li>
    );
  };

  const encOptions = ENCRYPTIONS.map((e) => ({ value: e, label: t(`mail.enc.${e}`) }));
  const title = account ? t("mail.editTitle", { name: account.name }) : t("mail.newTitle");
  const sentChoices = folders.map((f) => ({ value: f.name, label: f.name }));
  if (form.sent_folder && !folders.some((f) => f.name === form.sent_folder)) sentChoices.push({ value: form.sent_folder, label: form.sent_folder });
  const fieldError = error instanceof ApiError ? error : undefined;

  return (
    <Page title={title}>
      <form class="form" noValidate onSubmit={(e) => { e.preventDefault(); void save(); }}>
        {preset && <img class="logo" src={`/logos/${preset.id}.svg`} alt={preset.title} width={160} height={40} />}
        <ErrorBanner error={error} />
        {notice && <Notice kind="ok">{notice}</Notice>}
        <div class="row">
          <Checkbox label={t("mail.field.active")} name="active" checked={form.active} onChange={set("active")} />
          <Checkbox label={t("mail.field.is_default")} name="is_default" checked={form.is_default} onChange={set("is_default")} />
        </div>
        <TextField label={t("mail.field.name")} name="name" value={form.name} onInput={set("name")} error={fieldError} required />
        <TextField label={t("mail.field.email")} name="email" type="email" value={form.email} onInput={set("email")} error={fieldError} required autocomplete="off" />
        <TextField label={t("mail.field.password")} name="password" type="password" value={form.password} onInput={set("password")}
          error={fieldError} autocomplete="new-password" hint={account?.password_set ? t("mail.field.passwordSet") : preset?.app_password_hint} />
        <SelectField label={t("mail.field.preset")} name="preset" value={form.preset} onChange={choosePreset} error={fieldError}
          options={[{ value: "", label: t("mail.preset.custom") }, ...presets.map((p) => ({ value: p.id, label: p.title }))]}
          hint={preset ? t("mail.presetFixed", { title: preset.title }) : undefined} />
        {!preset && (
          <>
            <fieldset>
              <legend>{t("mail.incoming")}</legend>
              <div class="row">
                <TextField label={t("mail.field.imap_host")} name="imap.host" value={form.imap_host} onInput={set("imap_host")} error={fieldError} />
                <SelectField label={t("mail.field.encryption")} name="imap.encryption" value={form.imap_encryption}
                  onChange={(v) => set("imap_encryption")(v as Encryption)} options={encOptions} error={fieldError} />
                <TextField label={t("mail.field.port")} name="imap.port" value={form.imap_port} inputMode="numeric" onInput={set("imap_port")} error={fieldError} />
              </div>
              <TextField label={t("mail.field.imap_login")} name="imap.login" value={form.imap_login} onInput={set("imap_login")}
                error={fieldError} hint={t("mail.field.imap_loginHint")} autocomplete="off" />
            </fieldset>
            <fieldset>
              <legend>{t("mail.outgoing")}</legend>
              <div class="row">
                <TextField label={t("mail.field.smtp_host")} name="smtp.host" value={form.smtp_host} onInput={set("smtp_host")} error={fieldError} />
                <SelectField label={t("mail.field.encryption")} name="smtp.encryption" value={form.smtp_encryption}
                  onChange={(v) => set("smtp_encryption")(v as Encryption)} options={encOptions} error={fieldError} />
                <TextField label={t("mail.field.port")} name="smtp.port" value={form.smtp_port} inputMode="numeric" onInput={set("smtp_port")} error={fieldError} />
              </div>
              <SelectField label={t("mail.field.smtp_auth")} name="smtp.auth" value={form.smtp_auth} error={fieldError}
                onChange={(v) => set("smtp_auth")(v as SmtpAuth)} options={AUTHS.map((a) => ({ value: a, label: t(`mail.auth.${a}`) }))} />
              {form.smtp_auth === "special" && (
                <div class="row">
                  <TextField label={t("mail.field.smtp_login")} name="smtp.login" value={form.smtp_login} onInput={set("smtp_login")} error={fieldError} autocomplete="off" />
                  <TextField label={t("mail.field.smtp_password")} name="smtp.password" type="password" value={form.smtp_password}
                    onInput={set("smtp_password")} error={fieldError} autocomplete="new-password"
                    hint={account?.smtp.password_set ? t("mail.field.passwordSet") : undefined} />
                </div>
              )}
              <Checkbox label={t("mail.field.require_secure_auth")} name="require_secure_auth" checked={form.require_secure_auth}
                onChange={set("require_secure_auth")} disabled={form.smtp_auth === "none"} />
            </fieldset>
          </>
        )}
        <div class="row">
          <TextField label={t("mail.field.timeout_min")} name="timeout_min" value={form.timeout_min} inputMode="numeric"
            onInput={set("timeout_min")} error={fieldError} suffix={t("mail.min")} />
          <TextField label={t("mail.field.poll_every_min")} name="poll_every_min" value={form.poll_every_min} inputMode="numeric"
            onInput={set("poll_every_min")} error={fieldError} suffix={t("mail.min")} />
        </div>
        <div class="row align-end">
          <SelectField label={t("mail.field.sent_folder")} name="sent_folder" value={form.sent_folder} onChange={set("sent_folder")}
            error={fieldError} options={[{ value: "", label: t("mail.sentNone") }, ...sentChoices]} />
          <button type="button" disabled={busy !== ""} onClick={loadFolders}>{t("mail.loadFolders")}</button>
        </div>
        {check && <div role="status"><ul class="check-result">{side("imap")}{side("smtp")}</ul></div>}
        {status && (
          <div class="status" data-testid="mail-status">
            <h2>{t("mail.statusTitle")}: {t(`mail.state.${status.state}`)}</h2>
            <p>{t("mail.lastPoll", { at: formatTime(status.last_poll_at) })}</p>
            {status.last_error && <p class="warn">{t("mail.lastError", { error: status.last_error })}</p>}
          </div>
        )}
        <div class="actions">
          <button type="button" disabled={busy !== ""} onClick={runCheck}>{busy === "check" ? t("mail.checking") : t("mail.check")}</button>
          <button type="submit" class="primary" disabled={busy !== ""}>{t("common.save")}</button>
          <button type="button" onClick={() => navigate(`/users/${userId}`)}>{t("common.cancel")}</button>
          {account && <button type="button" class="danger" onClick={remove}>{t("mail.deleteAccount")}</button>}
        </div>
      </form>
    </Page>
  );
}
