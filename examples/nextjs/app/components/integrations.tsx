"use client";

// Connecting a provider: authorize (the service answers the provider's consent URL, with
// state and PKCE) → the browser goes to the provider → the provider sends it back to
// /integrations/<provider>/callback, which completes the connection.
import type { Integration, Provider } from "@user-service/client";
import { useCallback, useEffect, useState } from "react";
import { useSession } from "../session";
import { ErrorLine } from "./problem";

export const callbackUrl = (provider: string) => `${window.location.origin}/integrations/${provider}/callback`;

export function Integrations() {
  const { api } = useSession();
  const [providers, setProviders] = useState<Provider[]>([]);
  const [items, setItems] = useState<Integration[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    Promise.all([api.listProviders(), api.listIntegrations()]).then(([p, i]) => {
      setProviders(p.filter((x) => x.configured));
      setItems(i);
    }, setError);
  }, [api]);
  useEffect(load, [load]);

  const connect = async (provider: string) => {
    setError(null);
    try {
      const { authorization_url } = await api.authorize(provider, { redirect_uri: callbackUrl(provider) });
      window.location.assign(authorization_url);
    } catch (err) {
      setError(err);
    }
  };
  const disconnect = async (provider: string) => {
    setError(null);
    try {
      await api.disconnect(provider);
      load();
    } catch (err) {
      setError(err);
    }
  };
  const connected = (name: string) => items?.find((i) => i.provider === name && i.status !== "disconnected");

  return (
    <section aria-label="integrations">
      <h2>Integrations</h2>
      <table>
        <thead>
          <tr>
            <th>Provider</th>
            <th>Status</th>
            <th>Account</th>
            <th>Token expires</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {providers.map((p) => {
            const i = connected(p.name);
            return (
              <tr key={p.name} data-provider={p.name}>
                <td>{p.display_name}</td>
                <td data-testid={`status-${p.name}`}>{i?.status ?? "not connected"}</td>
                <td>{i?.account_email ?? ""}</td>
                <td className="muted">{i?.expires_at ? new Date(i.expires_at).toLocaleTimeString() : ""}</td>
                <td>
                  {i ? (
                    <button onClick={() => disconnect(p.name)}>Disconnect {p.display_name}</button>
                  ) : (
                    <button onClick={() => connect(p.name)}>Connect {p.display_name}</button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {items && providers.length === 0 && (
        <p className="muted">No provider is configured on this service (OAUTH_&lt;PROVIDER&gt;_CLIENT_ID and _SECRET).</p>
      )}
      <ErrorLine error={error} />
    </section>
  );
}
