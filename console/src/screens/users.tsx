// «Пользователи»: the list with search and the active/inactive state.
import { useEffect, useState } from "preact/hooks";
import { navigate } from "../app";
import { t } from "../i18n";
import { usePagedList } from "../paged";
import type { User } from "../types";
import { ErrorBanner, Page as Screen } from "../ui";

export function UsersScreen() {
  const [q, setQ] = useState("");
  const [state, setState] = useState<"all" | "active" | "inactive">("all");
  const list = usePagedList<User>("/users");
  const { items, cursor, error, loading } = list;
  const query = () => ({ q: q.trim() || null, active: state === "all" ? null : state === "active" });
  const load = (more: string | null) => list.load(query(), more);

  useEffect(() => {
    const timer = window.setTimeout(() => void load(null), q ? 250 : 0);
    return () => window.clearTimeout(timer);
  }, [q, state]);

  return (
    <Screen title={t("users.title")} actions={<button type="button" class="primary" onClick={() => navigate("/users/new")}>{t("users.create")}</button>}>
      <div class="toolbar" role="search">
        <label class="sr-only" for="users-q">{t("common.search")}</label>
        <input id="users-q" type="search" placeholder={t("users.search")} value={q}
          onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)} />
        <label for="users-state">{t("users.state")}</label>
        <select id="users-state" value={state} onChange={(e) => setState((e.currentTarget as HTMLSelectElement).value as typeof state)}>
          <option value="all">{t("users.state.all")}</option>
          <option value="active">{t("users.state.active")}</option>
          <option value="inactive">{t("users.state.inactive")}</option>
        </select>
      </div>
      <ErrorBanner error={error} />
      <table class="list" aria-busy={loading}>
        <thead>
          <tr>
            <th scope="col">{t("users.col.name")}</th>
            <th scope="col">{t("users.col.login")}</th>
            <th scope="col">{t("users.col.email")}</th>
            <th scope="col">{t("users.col.positions")}</th>
            <th scope="col">{t("users.col.state")}</th>
          </tr>
        </thead>
        <tbody>
          {items.map((user) => (
            <tr key={user.id} class={user.active ? "" : "muted"}>
              <td><a href={`#/users/${user.id}`}>{user.full_name}</a></td>
              <td>{user.login}</td>
              <td>{user.email ?? ""}</td>
              <td>{user.positions.map((p) => p.title).join(", ")}</td>
              <td>{user.active ? t("users.active") : t("users.inactive")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && items.length === 0 && <p class="empty">{t("common.empty")}</p>}
      {cursor && <button type="button" onClick={() => void load(cursor)}>{t("common.more")}</button>}
    </Screen>
  );
}
