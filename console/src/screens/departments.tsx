// «Подразделения»: the org tree with create, rename, move (drag and drop, or «Переместить в»)
// and delete (the API's 409 explained), and each department's positions with their roles.
import { useEffect, useState } from "preact/hooks";
import { all, api } from "../api";
import { t } from "../i18n";
import { isWithin, treeOrder } from "../rules";
import type { Department, Position, Role } from "../types";
import { ErrorBanner, Notice, Page, SelectField, TextField } from "../ui";

export function DepartmentsScreen() {
  const [departments, setDepartments] = useState<Department[]>([]);
  const [positions, setPositions] = useState<Position[]>([]);
  const [roles, setRoles] = useState<Role[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [newName, setNewName] = useState("");
  const [positionTitle, setPositionTitle] = useState("");
  const [positionRole, setPositionRole] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [dragging, setDragging] = useState<string | null>(null);
  const [dropTarget, setDropTarget] = useState<string | null>(null);

  const load = async () => {
    try {
      const [deps, pos, rls] = await Promise.all([all<Department>("/departments"), all<Position>("/positions"), all<Role>("/roles")]);
      setDepartments(deps);
      setPositions(pos);
      setRoles(rls);
      if (!positionRole && rls.length) setPositionRole(rls.find((r) => r.builtin !== "admin")?.id ?? rls[0].id);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => void load(), []);

  const current = departments.find((d) => d.id === selected) ?? null;
  // the rename field is set when a department is chosen, not by an effect: an effect
  // running after the first keystrokes would overwrite them
  const choose = (department: Department) => {
    setSelected(department.id);
    setName(department.name);
  };

  const act = async (action: () => Promise<unknown>, done: string) => {
    setError(null);
    setNotice(null);
    try {
      await action();
      setNotice(done);
      await load();
      return true;
    } catch (err) {
      setError(err);
      return false;
    }
  };

  const create = async (event: Event) => {
    event.preventDefault();
    const parent = current?.id ?? departments.find((d) => d.is_root)?.id ?? null;
    if (await act(() => api.post("/departments", { name: newName.trim(), parent_id: parent }), t("common.saved"))) setNewName("");
  };

  const move = (id: string, parent: string) => {
    if (isWithin(departments, id, parent)) return;
    void act(() => api.patch(`/departments/${id}`, { parent_id: parent }), t("common.saved"));
  };

  const remove = async () => {
    if (!current || !window.confirm(t("common.confirmDelete", { name: current.name }))) return;
    if (await act(() => api.del(`/departments/${current.id}`), t("common.deleted"))) setSelected(null);
  };

  const addPosition = async (event: Event) => {
    event.preventDefault();
    if (!current) return;
    if (await act(() => api.post("/positions", { title: positionTitle.trim(), department_id: current.id, role_id: positionRole }), t("common.saved"))) {
      setPositionTitle("");
    }
  };

  const tree = treeOrder(departments);
  const moveTargets = current
    ? tree.filter(({ item }) => !isWithin(departments, current.id, item.id))
      .map(({ item, depth }) => ({ value: item.id, label: `${"· ".repeat(depth)}${item.name}` }))
    : [];

  return (
    <Page title={t("dept.title")}>
      <ErrorBanner error={error} />
      {notice && <Notice kind="ok">{notice}</Notice>}
      <div class="split">
        <div>
          <p class="hint">{t("dept.dragHint")}</p>
          <ul class="tree" role="tree" aria-label={t("dept.title")}>
            {tree.map(({ item, depth }) => (
              <li key={item.id} role="treeitem" aria-level={depth + 1} aria-selected={item.id === selected}
                class={`depth-${Math.min(depth, 8)}${dropTarget === item.id ? " drop" : ""}`}
                draggable={!item.is_root} data-testid={`dept-${item.name}`}
                onDragStart={(e) => { setDragging(item.id); e.dataTransfer?.setData("text/plain", item.id); }}
                onDragEnd={() => { setDragging(null); setDropTarget(null); }}
                onDragOver={(e) => {
                  if (dragging && !isWithin(departments, dragging, item.id)) {
                    e.preventDefault();
                    setDropTarget(item.id);
                  }
                }}
                onDragLeave={() => setDropTarget((d) => (d === item.id ? null : d))}
                onDrop={(e) => {
                  e.preventDefault();
                  const id = e.dataTransfer?.getData("text/plain") || dragging;
                  setDropTarget(null);
                  if (id && id !== item.id) move(id, item.id);
                }}>
                <button type="button" class="node" onClick={() => choose(item)}>
                  {item.name}{item.is_root ? ` (${t("dept.root")})` : ""}
                </button>
              </li>
            ))}
          </ul>
          <form class="inline" onSubmit={create}>
            <TextField label={current ? `${t("dept.addChild")}: ${current.name}` : t("dept.add")} name="name" value={newName}
              onInput={setNewName} error={error} />
            <button type="submit" disabled={!newName.trim()}>{t("dept.add")}</button>
          </form>
        </div>
        {current && (
          <div class="panel" aria-label={current.name}>
            <form class="inline" onSubmit={(e) => { e.preventDefault(); void act(() => api.patch(`/departments/${current.id}`, { name: name.trim() }), t("common.saved")); }}>
              <TextField label={t("dept.name")} name="rename" value={name} onInput={setName} />
              <button type="submit">{t("dept.rename")}</button>
            </form>
            {!current.is_root && (
              <SelectField label={t("dept.move")} name="parent_id" value={current.parent_id ?? ""} options={moveTargets}
                onChange={(parent) => move(current.id, parent)} />
            )}
            {!current.is_root && <button type="button" class="danger" onClick={remove}>{t("common.delete")}</button>}
            <h2>{t("dept.positions")}</h2>
            <ul class="positions-list">
              {positions.filter((p) => p.department_id === current.id).map((p) => (
                <li key={p.id}>
                  {p.title} — {t("users.position.withRole", { role: p.role_name })} ({t("dept.holders", { n: p.holders })})
                  <button type="button" class="icon" aria-label={`${t("common.delete")}: ${p.title}`}
                    onClick={() => window.confirm(t("common.confirmDelete", { name: p.title })) && void act(() => api.del(`/positions/${p.id}`), t("common.deleted"))}>✕</button>
                </li>
              ))}
            </ul>
            <form class="inline" onSubmit={addPosition}>
              <TextField label={t("dept.positionTitle")} name="title" value={positionTitle} onInput={setPositionTitle} error={error} />
              <SelectField label={t("dept.positionRole")} name="role_id" value={positionRole} onChange={setPositionRole}
                options={roles.map((r) => ({ value: r.id, label: r.name }))} error={error} />
              <button type="submit" disabled={!positionTitle.trim()}>{t("dept.positionAdd")}</button>
            </form>
          </div>
        )}
      </div>
    </Page>
  );
}
