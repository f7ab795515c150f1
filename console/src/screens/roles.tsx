// «Права доступа»: the roles, and for the chosen one a matrix of rights × scopes
// (нет / свой / своего подразделения / все) with the catalogue's Russian titles.
import { useEffect, useState } from "preact/hooks";
import { all, api } from "../api";
import { t } from "../i18n";
import type { Right, Role, Scope } from "../types";
import { ErrorBanner, Notice, Page, TextField } from "../ui";

const SCOPES: Scope[] = ["none", "own", "department", "all"];

export function RolesScreen() {
  const [roles, setRoles] = useState<Role[]>([]);
  const [rights, setRights] = useState<Right[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [draft, setDraft] = useState<Record<string, Scope>>({});
  const [name, setName] = useState("");
  const [newName, setNewName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = async (pick?: string) => {
    try {
      const [rls, rts] = await Promise.all([all<Role>("/roles"), all<Right>("/rights")]);
      setRoles(rls);
      setRights(rts);
      const chosen = rls.find((r) => r.id === (pick ?? selected)) ?? null;
      if (chosen) {
        setSelected(chosen.id);
        setDraft({ ...chosen.rights });
        setName(chosen.name);
      }
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => void load(), []);

  const role = roles.find((r) => r.id === selected) ?? null;
  const pick = (r: Role) => {
    setSelected(r.id);
    setDraft({ ...r.rights });
    setName(r.name);
    setNotice(null);
    setError(null);
  };
  const dirty = role !== null && (name !== role.name || rights.some((r) => (draft[r.code] ?? "none") !== (role.rights[r.code] ?? "none")));

  const save = async () => {
    if (!role) return;
    setError(null);
    try {
      const full: Record<string, Scope> = {};
      for (const r of rights) full[r.code] = draft[r.code] ?? "none";
      await api.patch(`/roles/${role.id}`, { name: name.trim(), rights: full });
      setNotice(t("common.saved"));
      await load(role.id);
    } catch (err) {
      setError(err);
    }
  };

  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const created = await api.post<Role>("/roles", { name: newName.trim(), rights: {} });
      setNewName("");
      await load(created.id);
    } catch (err) {
      setError(err);
    }
  };

  const remove = async () => {
    if (!role || !window.confirm(t("common.confirmDelete", { name: role.name }))) return;
    setError(null);
    try {
      await api.del(`/roles/${role.id}`);
      setSelected(null);
      setNotice(t("common.deleted"));
      await load();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Page title={t("roles.title")}>
      <ErrorBanner error={error} />
      {notice && <Notice kind="ok">{notice}</Notice>}
      <div class="split">
        <div>
          <h2>{t("roles.list")}</h2>
          <ul class="picker">
            {roles.map((r) => (
              <li key={r.id}>
                <button type="button" class="node" aria-pressed={r.id === selected} onClick={() => pick(r)}>
                  {r.name}{r.builtin ? ` (${t("roles.builtin")})` : ""}
                </button>
              </li>
            ))}
          </ul>
          <form class="inline" onSubmit={create}>
            <TextField label={t("roles.name")} name="name" value={newName} onInput={setNewName} error={error} />
            <button type="submit" disabled={!newName.trim()}>{t("roles.add")}</button>
          </form>
        </div>
        <div>
          {!role ? <p class="hint">{t("roles.pick")}</p> : (
            <>
              <TextField label={t("roles.name")} name="role-name" value={name} onInput={setName} />
              <table class="matrix">
                <caption>{role.name}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("roles.right")}</th>
                    {SCOPES.map((s) => <th scope="col" key={s}>{t(`roles.scope.${s}`)}</th>)}
                  </tr>
                </thead>
                <tbody>
                  {rights.map((r) => (
                    <tr key={r.code} data-right={r.code}>
                      <th scope="row">{r.title}</th>
                      {SCOPES.map((s) => (
                        <td key={s}>
                          {r.scopes.includes(s) && (
                            <input type="radio" name={`scope-${r.code}`} value={s} checked={(draft[r.code] ?? "none") === s}
                              aria-label={`${r.title}: ${t(`roles.scope.${s}`)}`}
                              onChange={() => setDraft((d) => ({ ...d, [r.code]: s }))} />
                          )}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
              {dirty && <p class="warn">{t("roles.unsaved")}</p>}
              <div class="actions">
                <button type="button" class="primary" disabled={!dirty} onClick={save}>{t("common.save")}</button>
                <button type="button" disabled={!dirty} onClick={() => pick(role)}>{t("common.cancel")}</button>
                {!role.builtin && <button type="button" class="danger" onClick={remove}>{t("common.delete")}</button>}
              </div>
            </>
          )}
        </div>
      </div>
    </Page>
  );
}
