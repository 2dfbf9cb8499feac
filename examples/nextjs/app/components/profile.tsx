"use client";

import { isProblem, type User } from "@user-service/client";
import { useEffect, useState } from "react";
import { useSession } from "../session";
import { ErrorLine } from "./problem";

export function Profile() {
  const { api } = useSession();
  const [user, setUser] = useState<User | null>(null);
  const [first, setFirst] = useState("");
  const [last, setLast] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);

  const show = (u: User) => {
    setUser(u);
    setFirst(u.first_name ?? "");
    setLast(u.last_name ?? "");
  };
  useEffect(() => {
    api.getUser().then(show, setError);
  }, [api]);

  if (isProblem(error, "not_found") && !user) {
    return (
      <section>
        <h2>Profile</h2>
        <p className="error">
          This session&apos;s user does not exist in user-service yet. In development mode create it with{" "}
          <code>user-service dev user create --sub &lt;sub&gt; --email you@example.com</code> (in production
          Clerk&apos;s <code>user.created</code> webhook does).
        </p>
      </section>
    );
  }
  return (
    <section aria-label="profile">
      <h2>Profile</h2>
      {user && (
        <p>
          <strong data-testid="email">{user.email}</strong> <span className="muted">({user.clerk_user_id})</span>
        </p>
      )}
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setSaved(false);
          try {
            show(await api.updateUser({ first_name: first, last_name: last }));
            setSaved(true);
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label>
          First name <input name="first_name" value={first} onChange={(e) => setFirst(e.target.value)} />
        </label>
        <label>
          Last name <input name="last_name" value={last} onChange={(e) => setLast(e.target.value)} />
        </label>
        <button type="submit" disabled={!user}>
          Save profile
        </button>
        {saved && <span className="ok">Saved</span>}
      </form>
      <ErrorLine error={error} />
    </section>
  );
}
