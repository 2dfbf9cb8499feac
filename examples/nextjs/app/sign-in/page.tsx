"use client";

// Development-mode sign-in: paste a token from `user-service dev token --sub user_123`.
// In production this page is Clerk's <SignIn />; nothing else in the app changes.
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useSession } from "../session";

export default function SignIn() {
  const { signIn } = useSession();
  const router = useRouter();
  const [token, setToken] = useState("");
  return (
    <>
      <h1>Sign in (development mode)</h1>
      <section>
        <p className="muted">
          Run <code>user-service dev token --sub user_123</code> next to the service and paste what it prints.
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            signIn(token.trim());
            router.push("/");
          }}
        >
          <label>
            Session token
            <textarea name="token" rows={4} style={{ width: "100%" }} value={token} onChange={(e) => setToken(e.target.value)} />
          </label>
          <button type="submit" disabled={!token.trim()}>
            Sign in
          </button>
        </form>
      </section>
    </>
  );
}
