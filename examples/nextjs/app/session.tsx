"use client";

// Who is signed in, and the typed client that calls user-service with their session token.
//
// Development mode: the token is one printed by `user-service dev token --sub user_123`,
// pasted on /sign-in and kept in this tab's sessionStorage. With Clerk, replace `getToken`
// with Clerk's: `const { getToken } = useAuth()` and `createUserServiceClient({ baseUrl,
// getToken })`; Clerk refreshes its short-lived session tokens itself.
import { createUserServiceClient, type UserServiceClient } from "@user-service/client";
import { usePathname, useRouter } from "next/navigation";
import { createContext, type ReactNode, useContext, useEffect, useMemo, useState } from "react";

const KEY = "user-service.session-token";

interface SessionValue {
  api: UserServiceClient;
  signedIn: boolean;
  signIn(token: string): void;
  signOut(): void;
}

const SessionContext = createContext<SessionValue | null>(null);

export function Session({ apiUrl, children }: { apiUrl: string; children: ReactNode }) {
  const [token, setToken] = useState<string | null | undefined>(undefined);
  const router = useRouter();
  const pathname = usePathname();
  useEffect(() => setToken(sessionStorage.getItem(KEY)), []);
  useEffect(() => {
    if (token === null && pathname !== "/sign-in") router.replace("/sign-in");
  }, [token, pathname, router]);

  const value = useMemo<SessionValue>(
    () => ({
      api: createUserServiceClient({ baseUrl: apiUrl, getToken: () => sessionStorage.getItem(KEY) }),
      signedIn: Boolean(token),
      signIn(t) {
        sessionStorage.setItem(KEY, t);
        setToken(t);
      },
      signOut() {
        sessionStorage.removeItem(KEY);
        setToken(null);
      },
    }),
    [apiUrl, token],
  );
  // Until sessionStorage has been read, render nothing rather than a signed-out flash.
  if (token === undefined) return null;
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const v = useContext(SessionContext);
  if (!v) throw new Error("useSession outside <Session>");
  return v;
}
