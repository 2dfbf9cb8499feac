"""Sends the signed Clerk `user.created` webhook for one user, as Clerk would:

    python clerk_user_created.py API_BASE_URL SUB EMAIL

Signs with CLERK_WEBHOOK_SECRET from the environment (the service must have the same).
Stands in for `user-service dev user create` in scripts/test.d/50-walkthrough.sh until that
command is on this branch."""

import os
import sys

from drill import clerk_user_created


class _Svc:
    def __init__(self, base: str) -> None:
        self.base = base


if __name__ == "__main__":
    base, sub, email = sys.argv[1:4]
    clerk_user_created(_Svc(base), os.environ["CLERK_WEBHOOK_SECRET"], sub, email, "Ada")

