// «Журнал»: every change, filterable by object, action and time.
import { useEffect, useState } from "preact/hooks";
import { formatTime, label, t } from "../i18n";
import { usePagedList } from "../paged";
import type { JournalEntry } from "../types";
import { ErrorBanner, Page } from "../ui";

function changesText(changes: Record<string, unknown>): string {
  return Object.entries(changes).map(([key, value]) => `${key}: ${JSON.stringify(value)}`).join("; ");
}

export function JournalScreen() {
  const [entity, setEntity] = useState("");
  const [action, setAction] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const list = usePagedList<JournalEntry>("/journal", false);
  const { items, cursor, error, loading } = list;
  const load = (more: string | null) => list.load({
    entity: entity.trim() || null, action: action.trim() || null,
    since: since ? new Date(since).toISOString() : null, until: until ? new Date(until).toISOString() : null,
  }, more);

  useEffect(() => void load(null), []);

  return (
    <Page title={t("journal.title")}>
      <form class="toolbar" onSubmit={(e) => { e.preventDefault(); void load(null); }}>
        <label for="j-entity">{t("journal.entity")}</label>
        <input id="j-entity" value={entity} onInput={(e) => setEntity((e.currentTarget as HTMLInputElement).value)} list="j-entities" />
        <datalist id="j-entities">
          {["user", "role", "department", "position", "contact", "counterparty", "product", "invoice", "payment", "mail_account", "sip_account"]
            .map((e) => <option key={e} value={e}>{label("entity", e)}</option>)}
        </datalist>
        <label for="j-action">{t("journal.action")}</label>
        <input id="j-action" value={action} onInput={(e) => setAction((e.currentTarget as HTMLInputElement).value)} />
        <label for="j-since">{t("journal.since")}</label>
        <input id="j-since" type="datetime-local" value={since} onInput={(e) => setSince((e.currentTarget as HTMLInputElement).value)} />
        <label for="j-until">{t("journal.until")}</label>
        <input id="j-until" type="datetime-local" value={until} onInput={(e) => setUntil((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit">{t("journal.apply")}</button>
      </form>
      <ErrorBanner error={error} />
      <table class="list" aria-busy={loading} data-testid="journal">
        <thead>
          <tr>
            <th scope="col">{t("journal.col.at")}</th><th scope="col">{t("journal.col.actor")}</th>
            <th scope="col">{t("journal.col.entity")}</th><th scope="col">{t("journal.col.action")}</th>
            <th scope="col">{t("journal.col.changes")}</th>
          </tr>
        </thead>
        <tbody>
          {items.map((entry) => (
            <tr key={entry.id}>
              <td>{formatTime(entry.at)}</td>
              <td>{entry.actor?.full_name ?? entry.actor?.login ?? t("journal.system")}</td>
              <td data-code={entry.entity}>{label("entity", entry.entity)}</td>
              <td>{label("action", entry.action)}</td>
              <td class="changes">{changesText(entry.changes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && items.length === 0 && <p class="empty">{t("common.empty")}</p>}
      {cursor && <button type="button" onClick={() => void load(cursor)}>{t("common.more")}</button>}
    </Page>
  );
}
