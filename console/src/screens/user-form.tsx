// The guide's user form: Активный, Ф.И.О., Логин, Email, Пароль twice with live strength
// feedback, Должность from the org tree (several), Часовой пояс, «Подключить SIP запись»
// with «Настройка SIP записи», and the user's «Почтовые учетные записи».
import { useEffect, useMemo, useState } from "preact/hooks";
import { all, api, ApiError } from "../api";
import { navigate } from "../app";
import { formatTime, t } from "../i18n";
import { passwordProblems, splitMango, timeZones, treeOrder, utcOffset } from "../rules";
import type { Department, MailAccount, MailStatus, Position, SipAccount, SipCheck, User } from "../types";
import { Checkbox, Dialog, ErrorBanner, Notice, Page, SelectField, TextField } from "../ui";

interface SipForm {
  mango: string;
  login: string;
  password: string;
  domain: string;
  port: string;
}

const EMPTY_SIP: SipForm = { mango: "", login: "", password: "", domain: "", port: "5060" };

export function PasswordFeedback({ password }: { password: string }) {
  if (!password) return null;
  const problems = passwordProblems(password);
  if (problems.length === 0) return <span class="ok" data-testid="password-strength">{t("password.strong")}</span>;
  const missing = problems.map((p) => t(`password.${p}`)).join(", ");
  return <span class="warn" data-testid="password-strength">{t("password.weak", { missing })}</span>;
}

export function UserForm({ userId }: { userId: string | null }) {
  const [user, setUser] = useState<User | null>(null);
  const [active, setActive] = useState(true);
  const [fullName, setFullName] = useState("");
  const [login, setLogin] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [positionIds, setPositionIds] = useState<string[]>([""]);
  const [timezone, setTimezone] = useState("Europe/Moscow");
  const [sipEnabled, setSipEnabled] = useState(false);
  const [sip, setSip] = useState<SipForm>(EMPTY_SIP);
  const [sipAccount, setSipAccount] = useState<SipAccount | null>(null);
  const [sipCheck, setSipCheck] = useState<SipCheck | null>(null);
  const [sipBusy, setSipBusy] = useState(false);
  const [sipError, setSipError] = useState<unknown>(null);
  const [positions, setPositions] = useState<Position[]>([]);
  const [departments, setDepartments] = useState<Department[]>([]);
  const [mailAccounts, setMailAccounts] = useState<(MailAccount & { status?: MailStatus })[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [mismatch, setMismatch] = useState(false);
  const [busy, setBusy] = useState(false);
  const zones = useMemo(() => timeZones(), []);

  const loadSip = async (id: string) => {
    try {
      const account = await api.get<SipAccount>(`/users/${id}/sip`);
      setSipAccount(account);
      setSip({ mango: account.mango_username ?? "", login: account.login, password: "", domain: account.domain, port: String(account.port) });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) setSipError(err);
    }
  };

  const loadMail = async (id: string) => {
    try {
      const accounts = await all<MailAccount>(`/users/${id}/mail-accounts`);
      const withStatus = await Promise.all(accounts.map(async (a) => {
        try {
          return { ...a, status: await api.get<MailStatus>(`/users/${id}/mail-accounts/${a.id}/status`) };
        } catch {
          return a;
        }
      }));
      setMailAccounts(withStatus);
    } catch (err) {
      setError(err);
    }
  };

  const fill = (value: User) => {
    setUser(value);
    setActive(value.active);
    setFullName(value.full_name);
    setLogin(value.login);
    setEmail(value.email ?? "");
    setPositionIds(value.position_ids.length ? value.position_ids : [""]);
    setTimezone(value.timezone);
    setSipEnabled(value.sip_enabled);
  };

  useEffect(() => {
    (async () => {
      try {
        const [pos, deps] = await Promise.all([all<Position>("/positions"), all<Department>("/departments")]);
        setPositions(pos);
        setDepartments(deps);
        if (userId) {
          // the form shows (its title names the user) only once its SIP and mail parts are in,
          // so nothing typed early is overwritten by a late answer
          const [value] = await Promise.all([api.get<User>(`/users/${userId}`), loadSip(userId), loadMail(userId)]);
          fill(value);
        }
      } catch (err) {
        setError(err);
      }
    })();
  }, [userId]);

  const byDepartment = useMemo(() => {
    return treeOrder(departments).map(({ item, depth }) => ({
      department: item, depth, positions: positions.filter((p) => p.department_id === item.id),
    })).filter((group) => group.positions.length > 0);
  }, [departments, positions]);

  const saveSip = async (id: string): Promise<boolean> => {
    const touched = sip.login || sip.domain || sip.password || sip.mango;
    if (!sipEnabled || !touched) return true;
    const body: Record<string, unknown> = { login: sip.login.trim(), domain: sip.domain.trim(), port: Number(sip.port) || 5060 };
    if (sip.password) body.password = sip.password;
    try {
      const account = await api.put<SipAccount>(`/users/${id}/sip`, body);
      setSipAccount(account);
      setSip((s) => ({ ...s, password: "" }));
      setSipError(null);
      return true;
    } catch (err) {
      setSipError(err);
      return false;
    }
  };

  const save = async (stay: boolean) => {
    if ((password || confirm) && password !== confirm) {
      setMismatch(true);
      return;
    }
    setBusy(true);
    setError(null);
    setNotice(null);
    const body: Record<string, unknown> = {
      active, full_name: fullName.trim(), login: login.trim(), email: email.trim() || null,
      position_ids: positionIds.filter(Boolean), timezone, sip_enabled: sipEnabled,
    };
    if (password || !userId) {
      body.password = password;
      body.password_confirm = confirm;
    }
    try {
      const saved = userId ? await api.patch<User>(`/users/${userId}`, body) : await api.post<User>("/users", body);
      const sipSaved = await saveSip(saved.id);
      setPassword("");
      setConfirm("");
      if (!sipSaved) {
        // the user is saved; the SIP fields show their errors on the user's own page
        if (!userId) navigate(`/users/${saved.id}`);
        fill(saved);
        return;
      }
      if (!stay) navigate("/users");
      else if (!userId) navigate(`/users/${saved.id}`);
      else {
        fill(saved);
        setNotice(t("common.saved"));
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const checkSip = async () => {
    if (!userId) return;
    setSipBusy(true);
    setSipCheck(null);
    if (!(await saveSip(userId))) {
      setSipBusy(false);
      return;
    }
    try {
      setSipCheck(await api.post<SipCheck>(`/users/${userId}/sip/check`));
      await loadSip(userId);
    } catch (err) {
      setSipError(err);
    } finally {
      setSipBusy(false);
    }
  };

  const remove = async () => {
    if (!userId || !user || !window.confirm(t("common.confirmDelete", { name: user.full_name }))) return;
    try {
      await api.del(`/users/${userId}`);
      navigate("/users");
    } catch (err) {
      setError(err);
    }
  };

  const unlock = async () => {
    if (!userId) return;
    try {
      await api.post(`/users/${userId}/unlock`);
      setNotice(t("users.unlocked"));
    } catch (err) {
      setError(err);
    }
  };

  const onMango = (value: string) => {
    const parts = splitMango(value);
    setSip((s) => (parts ? { ...s, mango: value, login: parts.login, domain: parts.domain } : { ...s, mango: value }));
  };

  const buttons = (
    <div class="actions">
      <button type="button" class="primary" disabled={busy} onClick={() => void save(false)}>{t("common.save")}</button>
      <button type="button" disabled={busy} onClick={() => void save(true)}>{t("common.saveContinue")}</button>
      <button type="button" onClick={() => navigate("/users")}>{t("common.cancel")}</button>
      {userId && <button type="button" onClick={unlock}>{t("users.unlock")}</button>}
      {userId && <button type="button" class="danger" onClick={remove}>{t("common.delete")}</button>}
    </div>
  );

  const title = userId ? t("users.editTitle", { name: user?.full_name ?? "…" }) : t("users.newTitle");
  const mangoBad = sip.mango.trim() !== "" && splitMango(sip.mango) === null;
  return (
    <Page title={title}>
      <form class="form" onSubmit={(e) => { e.preventDefault(); void save(false); }} noValidate>
        {buttons}
        <ErrorBanner error={error} />
        {notice && <Notice kind="ok">{notice}</Notice>}
        <Checkbox label={t("users.field.active")} name="active" checked={active} onChange={setActive} />
        <TextField label={t("users.field.full_name")} name="full_name" value={fullName} onInput={setFullName} required error={error} />
        <TextField label={t("users.field.login")} name="login" value={login} onInput={setLogin} required error={error} autocomplete="off" />
        <TextField label={t("users.field.email")} name="email" type="email" value={email} onInput={setEmail} error={error} autocomplete="off" />
        <TextField label={t("users.field.password")} name="password" type="password" value={password} onInput={setPassword}
          error={error} autocomplete="new-password" required={!userId}
          hint={password ? <PasswordFeedback password={password} /> : userId ? t("users.field.passwordKeep") : undefined} />
        <TextField label={t("users.field.password_confirm")} name="password_confirm" type="password" value={confirm}
          onInput={setConfirm} error={error} autocomplete="new-password" required={!userId} />
        <fieldset class="positions" data-field="position_ids">
          <legend>{t("users.field.position")}</legend>
          {positionIds.map((pid, index) => {
            const picked = positions.find((p) => p.id === pid);
            return (
              <div class="position-row" key={index}>
                <select aria-label={`${t("users.field.position")} ${index + 1}`} value={pid} name="position"
                  onChange={(e) => {
                    const value = (e.currentTarget as HTMLSelectElement).value;
                    setPositionIds((ids) => ids.map((id, i) => (i === index ? value : id)));
                  }}>
                  <option value="">{t("users.position.none")}</option>
                  {byDepartment.map((group) => (
                    <optgroup key={group.department.id} label={`${"· ".repeat(group.depth)}${group.department.name}`}>
                      {group.positions.map((p) => (
                        <option key={p.id} value={p.id} disabled={p.id !== pid && positionIds.includes(p.id)}>{p.title}</option>
                      ))}
                    </optgroup>
                  ))}
                </select>
                {picked && <span class="role-of" data-testid="position-role">{t("users.position.withRole", { role: picked.role_name })}</span>}
                {positionIds.length > 1 && (
                  <button type="button" class="icon" aria-label={t("users.position.remove")} title={t("users.position.remove")}
                    onClick={() => setPositionIds((ids) => ids.filter((_, i) => i !== index))}>✕</button>
                )}
              </div>
            );
          })}
          {error instanceof ApiError && error.field("position_ids") && <div class="field-error" role="alert">{error.field("position_ids")}</div>}
          <button type="button" class="link" onClick={() => setPositionIds((ids) => [...ids, ""])}>+ {t("users.position.add")}</button>
        </fieldset>
        <SelectField label={t("users.field.timezone")} name="timezone" value={timezone} onChange={setTimezone} error={error}
          hint={t("users.timezone.current", { offset: utcOffset(timezone) })}
          options={zones.map((z) => ({ value: z.id, label: `${z.offset} — ${z.id.replace(/_/g, " ")}` }))} />
        <Checkbox label={t("users.field.sip_enabled")} name="sip_enabled" checked={sipEnabled} onChange={setSipEnabled} />
        {sipEnabled && (
          <fieldset class="sip" aria-labelledby="sip-title">
            <legend id="sip-title">{t("sip.title")}</legend>
            <ErrorBanner error={sipError} />
            <TextField label={t("sip.mango")} name="mango_username" value={sip.mango} onInput={onMango}
              hint={mangoBad ? <span class="warn">{t("sip.mangoBad")}</span> : t("sip.mangoHint")} autocomplete="off" />
            <TextField label={t("sip.login")} name="login" value={sip.login} onInput={(v) => setSip((s) => ({ ...s, login: v }))} error={sipError} autocomplete="off" />
            <TextField label={t("sip.password")} name="password" type="password" value={sip.password} autocomplete="new-password"
              onInput={(v) => setSip((s) => ({ ...s, password: v }))} error={sipError}
              hint={sipAccount?.password_set ? t("sip.passwordSet") : undefined} />
            <TextField label={t("sip.domain")} name="domain" value={sip.domain} onInput={(v) => setSip((s) => ({ ...s, domain: v }))} error={sipError} autocomplete="off" />
            <TextField label={t("sip.port")} name="port" value={sip.port} inputMode="numeric" onInput={(v) => setSip((s) => ({ ...s, port: v }))} error={sipError} />
            {userId ? (
              <div class="actions">
                <button type="button" disabled={sipBusy} onClick={checkSip}>{sipBusy ? t("sip.checking") : t("sip.check")}</button>
              </div>
            ) : <p class="hint">{t("sip.saveFirst")}</p>}
            {sipCheck && (
              <div class={`banner ${sipCheck.ok ? "ok" : "error"}`} role="status" data-testid="sip-check">
                {sipCheck.ok
                  ? t("sip.checkOk", { ms: sipCheck.elapsed_ms })
                  : t("sip.checkFail", { reason: [sipCheck.status, sipCheck.reason, sipCheck.detail].filter(Boolean).join(" "), ms: sipCheck.elapsed_ms })}
              </div>
            )}
            {sipAccount && (
              <p data-testid="sip-registration">{t("sip.registration", { state: t(`sip.reg.${sipAccount.registration.state}`) })}
                {sipAccount.registration.reason ? ` — ${sipAccount.registration.reason}` : ""}</p>
            )}
          </fieldset>
        )}
        <section class="mail-accounts" aria-labelledby="mail-title">
          <h2 id="mail-title">{t("mail.title")}
            {userId && <a class="button" href={`#/users/${userId}/mail/new`}>+ {t("mail.add")}</a>}
          </h2>
          {!userId ? <p class="hint">{t("mail.saveUserFirst")}</p> : (
            <table class="list">
              <thead>
                <tr><th scope="col">{t("mail.col.name")}</th><th scope="col">{t("mail.col.email")}</th><th scope="col">{t("mail.col.status")}</th></tr>
              </thead>
              <tbody>
                {mailAccounts.map((a) => (
                  <tr key={a.id}>
                    <td><a href={`#/users/${userId}/mail/${a.id}`}>{a.name}</a></td>
                    <td>{a.email}</td>
                    <td>{a.active ? t("mail.status.active") : t("mail.status.inactive")}
                      {a.status && ` · ${t(`mail.state.${a.status.state}`)}`}
                      {a.status?.last_poll_at && ` · ${formatTime(a.status.last_poll_at)}`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        {buttons}
      </form>
      {mismatch && (
        <Dialog title={t("common.warning")} onClose={() => setMismatch(false)}>
          <p>{t("password.mismatch")}</p>
        </Dialog>
      )}
    </Page>
  );
}

