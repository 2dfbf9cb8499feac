import type { Metadata } from "next";
import type { ReactNode } from "react";
import { Session } from "./session";
import "./globals.css";

export const metadata: Metadata = { title: "user-service example" };

// Read at request time, not baked in at build time: one build runs against any service.
export const dynamic = "force-dynamic";

export default function RootLayout({ children }: { children: ReactNode }) {
  const apiUrl = process.env.USER_SERVICE_URL ?? "http://127.0.0.1:8080";
  return (
    <html lang="en">
      <body>
        <Session apiUrl={apiUrl}>
          <main>{children}</main>
        </Session>
      </body>
    </html>
  );
}
