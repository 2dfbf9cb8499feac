"use client";

// Preferences with optimistic concurrency: every write sends the ETag of the last read as
// If-Match. When someone changed the document since (another tab, another device), the
// service answers 412 precondition_failed and writes nothing; we say so and offer the latest.
import { isProblem, type Preferences, type Versioned } from "@user-service/client";
import { useCallback, useEffect, useState } from "react";
import { useSession } from "../session";
import { ErrorLine } from "./problem";

type Theme = Preferences["ui"]["theme"];
const THEMES: Theme[] = ["light", "dark", "system"];

export function PreferencesCard() {
  const { api } = useSession();
  const [doc, setDoc] = useState<Versioned<Preferences> | null>(null);
  const [theme, setTheme] = useState<Theme>("system");
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);

  const show = useCallback((d: Versioned<Preferences>) => {
    setDoc(d);
    setTheme(d.value.ui.theme);
    document.documentElement.dataset.theme = d.value.ui.theme;
  }, []);
  // The conflict message stays until the latest document is on screen.
  const load = useCallback(() => {
    api.getPreferences().then((d) => {
      show(d);
      setError(null);
    }, setError);
  }, [api, show]);
  useEffect(load, [load]);

  const stale = isProblem(error, "precondition_failed");
  return (
    <section aria-label="preferences">
      <h2>Preferences</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (!doc) return;
          setError(null);
          setSaved(false);
          try {
            show(await api.updatePreferences({ ui: { theme } }, { ifMatch: doc.etag }));
            setSaved(true);
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label>
          Theme{" "}
          <select name="theme" value={theme} onChange={(e) => setTheme(e.target.value as Theme)}>
            {THEMES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={!doc}>
          Save preferences
        </button>
        {saved && <span className="ok">Saved</span>}
        {doc && <span className="muted" data-testid="prefs-version"> version {doc.value.version}</span>}
      </form>
      {stale ? (
        <div role="alert" data-problem-type="precondition_failed">
          <p className="error">
            These preferences were changed somewhere else since you loaded version {doc?.value.version}. Nothing was
            saved.
          </p>
          <button type="button" onClick={load}>
            Load the latest
          </button>
        </div>
      ) : (
        <ErrorLine error={error} />
      )}
    </section>
  );
}
