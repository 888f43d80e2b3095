"""Verifies one webhook delivery as a receiver would, with the Standard
Webhooks reference library (PyPI `standardwebhooks`), independently of
mPanel's own signing code. Reads {"secret", "headers", "body", "now"} as
JSON on stdin; `now` (Unix seconds) is the test clock's time, which the
library's five-minute timestamp tolerance is checked against. Prints the
verified payload's type; exits non-zero when verification fails."""

import json
import sys
from datetime import datetime, timezone

from standardwebhooks import webhooks


def main() -> None:
    message = json.load(sys.stdin)
    now = datetime.fromtimestamp(message["now"], tz=timezone.utc)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return now

    webhooks.datetime = Clock
    payload = webhooks.Webhook(message["secret"]).verify(message["body"], message["headers"])
    print(payload["type"])


if __name__ == "__main__":
    main()
