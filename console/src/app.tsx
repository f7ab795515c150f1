// The shell: who is signed in (GET /auth/me), what their rights show, and the hash router.
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { api, session } from "./api";
import { t, type MessageKey } from "./i18n";
import type { Me, Scope } from "./types";
import { ErrorBanner } from "./ui";
import { LoginScreen } from "./screens/login";
import { UsersScreen } from "./screens/users";
import { UserForm } from "./screens/user-form";
import { MailAccountForm } from "./screens/mail-form";
import { DepartmentsScreen } from "./screens/departments";
import { RolesScreen } from "./screens/roles";
import { OneCScreen } from "./screens/onec";
import { ImportScreen } from "./screens/import";
import { JournalScreen } from "./screens/journal";

export interface Access {
  me: Me;
  /** The caller's scope of a right ("none" when the role lacks it): the server still decides. */
  scope: (right: string) => Scope;
  can: (right: string) => boolean;
}

export const AccessContext = createContext<Access | null>(null);

export function useAccess(): Access {
  const access = useContext(AccessContext);
  if (!access) throw new Error("useAccess outside the signed-in shell");
  return access;
}

export function accessOf(me: Me): Access {
  const scope = (right: string): Scope => me.rights[right] ?? "none";
  return { me, scope, can: (right) => scope(right) !== "none" };
}

export function navigate(path: string): void {
  window.location.hash = `#${path}`;
}

function currentPath(): string {
  return window.location.hash.replace(/^#/, "") || "/";
}

function useHashPath(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const update = () => setPath(currentPath());
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return path;
}

interface Section {
  path: string;
  key: MessageKey;
  right: string;
}

export const SECTIONS: Section[] = [
  { path: "/users", key: "nav.users", right: "users.manage" },
  { path: "/departments", key: "nav.departments", right: "org.manage" },
  { path: "/roles", key: "nav.roles", right: "org.manage" },
  { path: "/1c", key: "nav.onec", right: "exchange.run" },
  { path: "/import", key: "nav.import", right: "csv.import" },
  { path: "/journal", key: "nav.journal", right: "journal.read" },
];

/** Sends the browser to `to` once rendered (a section the user may not open). */
function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to), [to]);
  return null;
}

function route(path: string, access: Access) {
  const parts = path.split("/").filter(Boolean);
  const allowed = SECTIONS.filter((s) => access.can(s.right));
  const section = SECTIONS.find((s) => s.path === `/${parts[0] ?? ""}`);
  if (!section || !access.can(section.right)) {
    if (allowed.length === 0) return <p class="banner warn">{t("app.noRights")}</p>;
    return <Redirect to={allowed[0].path} />;
  }
  switch (section.path) {
    case "/users":
      if (parts[1] === "new") return <UserForm key="new" userId={null} />;
      if (parts[1] && parts[2] === "mail") return <MailAccountForm key={path} userId={parts[1]} accountId={parts[3] === "new" ? null : parts[3] ?? null} />;
      if (parts[1]) return <UserForm key={parts[1]} userId={parts[1]} />;
      return <UsersScreen />;
    case "/departments":
      return <DepartmentsScreen />;
    case "/roles":
      return <RolesScreen />;
    case "/1c":
      return <OneCScreen />;
    case "/import":
      return <ImportScreen />;
    default:
      return <JournalScreen />;
  }
}

export function App() {
  const path = useHashPath();
  const [signedIn, setSignedIn] = useState(session.signedIn);
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => session.onChange((value) => {
    setSignedIn(value);
    if (!value) setMe(null);
  }), []);

  useEffect(() => {
    if (!signedIn) return;
    let live = true;
    setError(null);
    api.get<Me>("/auth/me").then((value) => live && setMe(value)).catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [signedIn]);

  useEffect(() => {
    session.resume();
  }, []);

  if (!signedIn) return <LoginScreen />;
  if (error) return <main id="main" class="centered"><ErrorBanner error={error} /></main>;
  if (!me) return <main id="main" class="centered"><p aria-busy="true">{t("app.loading")}</p></main>;
  const access = accessOf(me);
  const logout = async () => {
    try {
      await api.post("/auth/logout");
    } catch {
      // the session ends here whatever the server says
    }
    session.end();
    navigate("/");
  };
  const active = `/${path.split("/").filter(Boolean)[0] ?? ""}`;
  return (
    <AccessContext.Provider value={access}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>{t("app.skip")}</a>
      <header class="topbar">
        <span class="brand">{t("app.title")}</span>
        <span class="who">{t("app.signedInAs", { name: me.user.full_name, login: me.user.login })}</span>
        <button type="button" class="link" onClick={logout}>{t("app.logout")}</button>
      </header>
      <div class="layout">
        <nav aria-label={t("nav.label")}>
          <ul>
            {SECTIONS.filter((s) => access.can(s.right)).map((s) => (
              <li key={s.path}>
                <a href={`#${s.path}`} aria-current={active === s.path ? "page" : undefined}>{t(s.key)}</a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>{route(path, access)}</main>
      </div>
    </AccessContext.Provider>
  );
}
