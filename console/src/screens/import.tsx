// «Импорт данных»: upload, the suggested mapping to confirm, a dry run with the would-be
// counts, then the import with progress, the errors file, and revert.
import { useState } from "preact/hooks";
import { api, pollJob, saveBlob } from "../api";
import { t } from "../i18n";
import type { ImportJob, ImportMapping } from "../types";
import { ErrorBanner, Notice, Page, Progress, SelectField } from "../ui";

const ENTITIES = ["contacts", "counterparties", "products"] as const;
const POLICIES = ["skip", "update", "create"] as const;
const settled = (job: ImportJob) => ["done", "failed", "reverted"].includes(job.status);

export function ImportScreen() {
  const [entity, setEntity] = useState<string>("contacts");
  const [file, setFile] = useState<File | null>(null);
  const [suggestion, setSuggestion] = useState<ImportMapping | null>(null);
  const [mapping, setMapping] = useState<Record<string, string>>({});
  const [policy, setPolicy] = useState<string>("skip");
  const [dryRun, setDryRun] = useState<ImportJob | null>(null);
  const [job, setJob] = useState<ImportJob | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const suggest = async () => {
    if (!file) return;
    setBusy(true);
    setError(null);
    setDryRun(null);
    setJob(null);
    try {
      const answer = await api.upload<ImportMapping>("/import/csv/suggest", file, { entity });
      setSuggestion(answer);
      setMapping({ ...answer.mapping });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const start = async (dry: boolean) => {
    if (!file) return;
    setBusy(true);
    setError(null);
    const show = dry ? setDryRun : setJob;
    show(null);
    try {
      const chosen = Object.fromEntries(Object.entries(mapping).filter(([, field]) => field));
      const accepted = await api.upload<{ job_id: string }>("/import/csv", file, {
        entity, dry_run: dry, duplicates: policy, mapping: JSON.stringify(chosen), file_name: file.name.slice(0, 100),
      });
      await pollJob<ImportJob>(`/import/jobs/${accepted.job_id}`, settled, show);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const revert = async () => {
    if (!job) return;
    setBusy(true);
    setError(null);
    try {
      await api.post(`/import/jobs/${job.id}/revert`);
      await pollJob<ImportJob>(`/import/jobs/${job.id}`, (j) => j.status !== "reverting" && j.reverted !== null, setJob);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const errorsFile = async (which: ImportJob) => {
    try {
      saveBlob(await api.blob(`/import/jobs/${which.id}/errors.csv`), `errors-${which.entity}.csv`);
    } catch (err) {
      setError(err);
    }
  };

  const counts = (j: ImportJob) => ({ created: j.created, updated: j.updated, skipped: j.skipped, rejected: j.rejected, total: j.total });
  const mapped = new Set(Object.values(mapping).filter(Boolean));
  const missing = suggestion ? suggestion.fields.filter((f) => f.required && !mapped.has(f.name)).map((f) => f.title) : [];

  const jobView = (j: ImportJob, dry: boolean) => (
    <div class="job" data-testid={dry ? "import-dry-run" : "import-job"}>
      {!settled(j) && <Progress value={j.progress} label={t("import.progress", { p: j.progress })} />}
      {j.status === "failed" && <p class="warn">{t("import.failed", { error: j.error ?? "" })}</p>}
      {j.status === "done" && <p>{t(dry ? "import.wouldBe" : "import.done", counts(j))}</p>}
      {j.reverted && <p>{t("import.reverted", j.reverted)}</p>}
      {j.status !== "failed" && j.rejected > 0 && j.errors_url && <button type="button" onClick={() => errorsFile(j)}>{t("import.errors")}</button>}
    </div>
  );

  return (
    <Page title={t("import.title")}>
      <ErrorBanner error={error} />
      <section class="form" aria-labelledby="step1">
        <h2 id="step1">{t("import.step1")}</h2>
        <SelectField label={t("import.entity")} name="entity" value={entity} error={error}
          onChange={(v) => { setEntity(v); setSuggestion(null); }} options={ENTITIES.map((e) => ({ value: e, label: t(`import.entity.${e}`) }))} />
        <div class="field">
          <label for="import-file">{t("import.file")}</label>
          <input id="import-file" type="file" accept=".csv,.txt,.xlsx,text/csv"
            onChange={(e) => { setFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null); setSuggestion(null); }} />
        </div>
        <button type="button" class="primary" disabled={!file || busy} onClick={suggest}>{t("import.suggest")}</button>
      </section>
      {suggestion && (
        <section class="form" aria-labelledby="step2">
          <h2 id="step2">{t("import.step2")}</h2>
          <p class="hint">{t("import.format", { format: suggestion.format, encoding: suggestion.encoding ?? "—", delimiter: suggestion.delimiter ?? "—" })}</p>
          <table class="list mapping">
            <thead><tr><th scope="col">{t("import.col.header")}</th><th scope="col">{t("import.col.sample")}</th><th scope="col">{t("import.col.field")}</th></tr></thead>
            <tbody>
              {suggestion.headers.map((header, index) => (
                <tr key={header}>
                  <th scope="row">{header}</th>
                  <td>{suggestion.sample[0]?.[index] ?? ""}</td>
                  <td>
                    <select aria-label={`${t("import.col.field")}: ${header}`} value={mapping[header] ?? ""}
                      onChange={(e) => setMapping((m) => ({ ...m, [header]: (e.currentTarget as HTMLSelectElement).value }))}>
                      <option value="">{t("import.skipColumn")}</option>
                      {suggestion.fields.map((f) => <option key={f.name} value={f.name}>{f.title}{f.required ? " *" : ""}</option>)}
                    </select>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {missing.length > 0 && <p class="warn" role="alert">{t("import.missing", { fields: missing.join(", ") })}</p>}
          <h2>{t("import.step3")}</h2>
          <SelectField label={t("import.duplicates")} name="duplicates" value={policy} onChange={setPolicy} error={error}
            options={POLICIES.map((p) => ({ value: p, label: t(`import.dup.${p}`) }))} />
          <div class="actions">
            <button type="button" disabled={busy || missing.length > 0} onClick={() => start(true)}>{t("import.dryRun")}</button>
            <button type="button" class="primary" disabled={busy || missing.length > 0} onClick={() => start(false)}>{t("import.run")}</button>
          </div>
          {dryRun && jobView(dryRun, true)}
          {job && jobView(job, false)}
          {job && job.status === "done" && !job.reverted && (
            <button type="button" class="danger" disabled={busy} onClick={revert}>{t("import.revert")}</button>
          )}
          {job && job.status === "done" && <Notice kind="ok">{t("common.saved")}</Notice>}
        </section>
      )}
    </Page>
  );
}
