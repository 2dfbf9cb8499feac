"use client";

import { isProblem } from "@user-service/client";

/** One line for any error: a problem document's type and detail, else the message. */
export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  if (isProblem(error)) {
    return (
      <p className="error" role="alert" data-problem-type={error.type}>
        {error.status} {error.type}: {error.problem.detail ?? error.problem.title}
        <span className="muted"> (request {error.problem.request_id})</span>
      </p>
    );
  }
  return (
    <p className="error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
