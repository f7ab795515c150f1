// «Вход в систему»: код продукта, логин, пароль. Lockout and seats are shown as the API answers them.
import { useEffect, useState } from "preact/hooks";
import { ApiError, request, session, type TokenPair } from "../api";
import { t } from "../i18n";
import { ErrorBanner, TextField, formatSeconds } from "../ui";

const LAST_CODE = "crm.productCode";

export function LoginScreen() {
  const [productCode, setProductCode] = useState(() => localStorage.getItem(LAST_CODE) ?? "");
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [waitUntil, setWaitUntil] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    document.title = `${t("login.title")} — ${t("app.title")}`;
  }, []);
  useEffect(() => {
    if (waitUntil === null) return;
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [waitUntil]);

  const left = waitUntil === null ? 0 : (waitUntil - now) / 1000;

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const pair = await request<TokenPair>("POST", "/auth/login", {
        json: { product_code: productCode.trim(), login: login.trim(), password }, auth: false,
      });
      localStorage.setItem(LAST_CODE, productCode.trim());
      setPassword("");
      session.start(pair);
    } catch (err) {
      setError(err);
      if (err instanceof ApiError && err.status === 429) {
        setWaitUntil(Date.now() + Number(err.body.retry_after ?? 1) * 1000);
        setNow(Date.now());
      } else {
        setWaitUntil(null);
      }
    } finally {
      setBusy(false);
    }
  };

  let message: string | null = null;
  if (error instanceof ApiError) {
    if (error.status === 401) message = t("login.invalid");
    else if (error.status === 429) {
      message = error.body.locked
        ? t("login.lockedAdmin", { time: formatSeconds(left) })
        : t("login.locked", { time: formatSeconds(left) });
    } else if (error.code === "seats_exhausted") message = t("login.seats", { max: String(error.body.max_sessions ?? "?") });
  }

  return (
    <main id="main" class="login">
      <form class="card" onSubmit={submit} aria-labelledby="login-title" noValidate>
        <h1 id="login-title">{t("login.title")}</h1>
        {message ? <div class="banner error" role="alert" data-testid="login-error">{message}</div> : <ErrorBanner error={error} />}
        <TextField label={t("login.productCode")} name="product_code" value={productCode} onInput={setProductCode}
          autocomplete="organization" required error={error} />
        <TextField label={t("login.login")} name="login" value={login} onInput={setLogin} autocomplete="username"
          required error={error} />
        <TextField label={t("login.password")} name="password" type="password" value={password} onInput={setPassword}
          autocomplete="current-password" required error={error} />
        <button type="submit" class="primary" disabled={busy || left > 0}>{t("login.submit")}</button>
        <p class="hint">{t("login.hint")}</p>
      </form>
    </main>
  );
}
