// A list read 50 at a time with «Показать ещё»: what the users list and the journal share.
import { useState } from "preact/hooks";
import { api, type Page, type Query } from "./api";

export interface PagedList<T> {
  items: T[];
  cursor: string | null;
  error: unknown;
  loading: boolean;
  /** The first page for `query` (more = null), or the next one after `more`. */
  load: (query: Query, more: string | null) => Promise<void>;
}

export function usePagedList<T>(path: string, initiallyLoading = true): PagedList<T> {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(initiallyLoading);

  const load = async (query: Query, more: string | null) => {
    setLoading(true);
    try {
      const page = await api.get<Page<T>>(path, { ...query, limit: 50, cursor: more });
      setItems((prev) => (more ? [...prev, ...page.items] : page.items));
      setCursor(page.next_cursor);
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  };
  return { items, cursor, error, loading, load };
}
