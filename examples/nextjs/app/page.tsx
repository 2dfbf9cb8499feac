"use client";

import { Integrations } from "./components/integrations";
import { PreferencesCard } from "./components/preferences";
import { Profile } from "./components/profile";
import { useSession } from "./session";

export default function Home() {
  const { signedIn, signOut } = useSession();
  if (!signedIn) return null;
  return (
    <>
      <h1>
        Your account <button onClick={signOut}>Sign out</button>
      </h1>
      <Profile />
      <PreferencesCard />
      <Integrations />
    </>
  );
}
