"""``python -m bench.fake NAME CONFIG.json``: a fake vendor for the delivery figure, in its own process.

It is ``relay fake NAME`` with one difference: the listening socket's backlog is 128 rather than
socketserver's default of 5. With 32 clients connecting at once, a backlog of 5 overflows, the
kernel drops SYNs and each dropped client waits a full second to retry: that would measure the
fake's accept queue, not the client. Real vendor endpoints accept far more.
"""

from __future__ import annotations

import contextlib
import json
import socketserver
import sys
from pathlib import Path

__all__ = ["BACKLOG", "main"]

BACKLOG = 128


def main(argv: list[str]) -> None:
    name, config = argv
    socketserver.TCPServer.request_queue_size = BACKLOG  # read by listen() as the server starts
    from relay.demo import fake_registry  # relay.fakes, which mypy cannot see through the source layout

    fakes = fake_registry()
    vendor = fakes.FAKES[name]()
    vendor.configure(json.loads(Path(config).read_text(encoding="utf-8")))
    server = fakes.FakeServer(vendor)
    print(f"fake {name} listening on {server.url}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
