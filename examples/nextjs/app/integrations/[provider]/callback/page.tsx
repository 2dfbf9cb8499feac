"use client";

// Where the provider sends the browser back: hand `code` and `state` to the service, which
// checks the state (single use, bound to this user), exchanges the code with its PKCE
// verifier and stores the tokens. The browser never sees a provider token.
import type { Integration } from "@user-service/client";
import Link from "next/link";
import { useParams, useSearchParams } from "next/navigation";
import { Suspense, useEffect, useRef, useState } from "react";
import { ErrorLine } from "../../../components/problem";
import { useSession } from "../../../session";

function Complete() {
  const { api, signedIn } = useSession();
  const { provider } = useParams<{ provider: string }>();
  const query = useSearchParams();
  const [result, setResult] = useState<Integration | null>(null);
  const [error, setError] = useState<unknown>(null);
  // The state is single-use: never send it twice (React may run effects twice in development).
  const sent = useRef(false);

  useEffect(() => {
    if (!signedIn || sent.current) return;
    sent.current = true;
    const code = query.get("code");
    const state = query.get("state");
    if (!code || !state) {
      setError(new Error(`the provider answered ${query.get("error") ?? "without a code"}: ${query.get("error_description") ?? ""}`));
      return;
    }
    api.complete(provider, { code, state }).then(setResult, setError);
  }, [api, provider, query, signedIn]);

  return (
    <section aria-label="callback">
      <h2>Connecting {provider}</h2>
      {!result && !error && <p className="muted">Completing…</p>}
      {result && (
        <p className="ok" data-testid="connected">
          Connected {result.account_email ?? result.account_id} ({result.status})
        </p>
      )}
      <ErrorLine error={error} />
      <p>
        <Link href="/">Back to your account</Link>
      </p>
    </section>
  );
}

export default function Callback() {
  return (
    <Suspense>
      <Complete />
    </Suspense>
  );
}
