// «Интеграция с 1С»: Версия обмена with its description, Файл обмена, the objects to load
// and to unload (with Время начала / Время конца), «Перезаписывать…», «Загрузить» with a
// progress bar, the unload file, «Журнал обмена», and the 8.2 rules file.
import { useEffect, useState } from "preact/hooks";
import { all, api, pollJob, saveBlob, type Page as ApiPage } from "../api";
import { formatTime, label, t, type MessageKey } from "../i18n";
import type { ExchangeJob, ExchangeLogEntry, ExchangeSettings, ExchangeVersion } from "../types";
import { Checkbox, ErrorBanner, Notice, Page, Progress, SelectField, TextField } from "../ui";

type Window = { since: string; until: string };

/** datetime-local wants "YYYY-MM-DDTHH:MM" in local time. */
function toLocalInput(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value: string): string | null {
  return value ? new Date(value).toISOString() : null;
}

const objectTitle = (name: string) => t(`onec.obj.${name}` as MessageKey);
const finished = (job: ExchangeJob) => job.status === "done" || job.status === "failed";

export function OneCScreen() {
  const [versions, setVersions] = useState<ExchangeVersion[]>([]);
  const [version, setVersion] = useState("bp82");
  const [fileName, setFileName] = useState("");
  const [importObjects, setImportObjects] = useState<string[]>([]);
  const [exportObjects, setExportObjects] = useState<Record<string, Window | undefined>>({});
  const [overwrite, setOverwrite] = useState(false);
  const [file, setFile] = useState<File | null>(null);
  const [job, setJob] = useState<ExchangeJob | null>(null);
  const [log, setLog] = useState<ExchangeLogEntry[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const loadLog = async () => {
    try {
      setLog((await api.get<ApiPage<ExchangeLogEntry>>("/exchange/log", { limit: 50 })).items);
    } catch (err) {
      setError(err);
    }
  };

  useEffect(() => {
    (async () => {
      try {
        const [vs, settings] = await Promise.all([all<ExchangeVersion>("/exchange/versions"), api.get<ExchangeSettings>("/exchange/settings")]);
        setVersions(vs);
        setVersion(settings.version);
        setFileName(settings.file_name ?? "");
        setImportObjects(settings.import_objects);
        const windows: Record<string, Window> = {};
        for (const [name, w] of Object.entries(settings.export_objects)) windows[name] = { since: toLocalInput(w.since), until: toLocalInput(w.until) };
        setExportObjects(windows);
        setOverwrite(settings.overwrite);
      } catch (err) {
        setError(err);
      }
      await loadLog();
    })();
  }, []);

  const current = versions.find((v) => v.id === version) ?? null;

  const settingsBody = () => {
    const exports: Record<string, { since: string | null; until: string | null }> = {};
    for (const name of current?.export_objects ?? []) {
      const w = exportObjects[name];
      if (w) exports[name] = { since: fromLocalInput(w.since), until: fromLocalInput(w.until) };
    }
    return {
      version, file_name: fileName.trim() || null, overwrite,
      import_objects: importObjects.filter((o) => current?.import_objects.includes(o)), export_objects: exports,
    };
  };

  const saveSettings = async () => {
    setError(null);
    try {
      await api.put("/exchange/settings", settingsBody());
      setNotice(t("common.saved"));
      return true;
    } catch (err) {
      setError(err);
      return false;
    }
  };

  const follow = async (jobId: string) => {
    const done = await pollJob<ExchangeJob>(`/exchange/jobs/${jobId}`, finished, setJob);
    await loadLog();
    return done;
  };

  /** Saves the settings, then starts a job (`start` answers its id) and follows it. */
  const runJob = async (start: () => Promise<{ job_id: string }>) => {
    setBusy(true);
    setNotice(null);
    setJob(null);
    try {
      if (!(await saveSettings())) return;
      setNotice(null);
      await follow((await start()).job_id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const load = async () => {
    if (!file) {
      setError(null);
      setNotice(t("onec.noFile"));
      return;
    }
    await runJob(() => api.upload<{ job_id: string }>("/exchange/import", file, {
      version, objects: importObjects.join(","), overwrite, file_name: (fileName.trim() || file.name).slice(0, 100),
    }));
  };

  const unload = () => runJob(() => api.post<{ job_id: string }>("/exchange/export", {
    version, objects: Object.keys(settingsBody().export_objects),
  }));

  const download = async () => {
    if (!job?.download_url) return;
    try {
      saveBlob(await api.blob(job.download_url.replace(/^\/api\/v1/, "")), job.file_name || "crm-exchange.xml");
    } catch (err) {
      setError(err);
    }
  };

  const rules = async () => {
    try {
      saveBlob(await api.blob(`/exchange/versions/${version}/rules`), `CRM_1C82_rules.xml`);
    } catch (err) {
      setError(err);
    }
  };

  const toggle = (list: string[], name: string, on: boolean) => (on ? [...list.filter((x) => x !== name), name] : list.filter((x) => x !== name));

  return (
    <Page title={t("onec.title")}>
      <ErrorBanner error={error} />
      {notice && <Notice>{notice}</Notice>}
      <div class="form">
        <SelectField label={t("onec.version")} name="version" value={version} onChange={setVersion} error={error}
          options={versions.map((v) => ({ value: v.id, label: v.title }))} />
        {current && (
          <div class="description">
            <h2>{t("onec.description")}</h2>
            <p data-testid="version-description">{current.description}</p>
            {current.has_rules && <button type="button" class="link" onClick={rules}>{t("onec.rules")}</button>}
          </div>
        )}
        <TextField label={t("onec.fileName")} name="file_name" value={fileName} onInput={setFileName} error={error} />
        <div class="field">
          <label for="onec-file">{t("onec.file")}</label>
          <input id="onec-file" type="file" accept=".xml,.zip,application/xml"
            onChange={(e) => {
              const chosen = (e.currentTarget as HTMLInputElement).files?.[0] ?? null;
              setFile(chosen);
              if (chosen && !fileName) setFileName(chosen.name);
            }} />
        </div>
        <div class="split">
          <table class="list">
            <caption>{t("onec.importObjects")}</caption>
            <thead><tr><th scope="col">*</th><th scope="col">{t("onec.col.name")}</th></tr></thead>
            <tbody>
              {(current?.import_objects ?? []).map((name) => (
                <tr key={name}>
                  <td><input type="checkbox" id={`imp-${name}`} checked={importObjects.includes(name)}
                    onChange={(e) => setImportObjects((l) => toggle(l, name, (e.currentTarget as HTMLInputElement).checked))} /></td>
                  <td><label for={`imp-${name}`}>{objectTitle(name)}</label></td>
                </tr>
              ))}
            </tbody>
          </table>
          <table class="list">
            <caption>{t("onec.exportObjects")}</caption>
            <thead>
              <tr><th scope="col">*</th><th scope="col">{t("onec.col.name")}</th><th scope="col">{t("onec.col.since")}</th><th scope="col">{t("onec.col.until")}</th></tr>
            </thead>
            <tbody>
              {(current?.export_objects ?? []).map((name) => {
                const w = exportObjects[name];
                const setW = (patch: Partial<Window>) => setExportObjects((o) => ({ ...o, [name]: { since: "", until: "", ...o[name], ...patch } }));
                return (
                  <tr key={name}>
                    <td><input type="checkbox" id={`exp-${name}`} checked={Boolean(w)}
                      onChange={(e) => setExportObjects((o) => ({ ...o, [name]: (e.currentTarget as HTMLInputElement).checked ? { since: "", until: "" } : undefined }))} /></td>
                    <td><label for={`exp-${name}`}>{objectTitle(name)}</label></td>
                    <td><input type="datetime-local" aria-label={`${objectTitle(name)}: ${t("onec.col.since")}`} value={w?.since ?? ""} disabled={!w}
                      onInput={(e) => setW({ since: (e.currentTarget as HTMLInputElement).value })} /></td>
                    <td><input type="datetime-local" aria-label={`${objectTitle(name)}: ${t("onec.col.until")}`} value={w?.until ?? ""} disabled={!w}
                      onInput={(e) => setW({ until: (e.currentTarget as HTMLInputElement).value })} /></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <Checkbox label={t("onec.overwrite")} name="overwrite" checked={overwrite} onChange={setOverwrite} />
        <div class="actions">
          <button type="button" class="primary" disabled={busy} onClick={load}>{t("onec.load")}</button>
          <button type="button" disabled={busy} onClick={unload}>{t("onec.export")}</button>
          <button type="button" disabled={busy} onClick={saveSettings}>{t("onec.saveSettings")}</button>
        </div>
        {job && (
          <div class="job" data-testid="exchange-job">
            <Progress value={job.progress} label={t("onec.progress", { p: job.progress })} />
            {job.status === "failed" && <p class="warn">{t("onec.failed", { error: job.error ?? "" })}</p>}
            {job.status === "done" && <p>{t("onec.result", { read: job.read, created: job.created, updated: job.updated, skipped: job.skipped, rejected: job.rejected })}</p>}
            {job.status === "done" && job.download_url && <button type="button" onClick={download}>{t("onec.download")}</button>}
          </div>
        )}
      </div>
      <h2>{t("onec.log")}</h2>
      <table class="list" data-testid="exchange-log">
        <thead><tr><th scope="col">{t("onec.log.at")}</th><th scope="col">{t("onec.log.level")}</th><th scope="col">{t("onec.log.message")}</th></tr></thead>
        <tbody>
          {log.map((entry) => (
            <tr key={entry.id} class={entry.level}>
              <td>{formatTime(entry.at)}</td><td>{label("level", entry.level)}</td><td>{entry.message}{entry.path ? ` (${entry.path})` : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}
