"""A real https upstream for tests: the simulator behind TLS with a throwaway trustme CA.

``TlsUpstream.url`` is ``https://127.0.0.1:PORT/v1``; ``ca_file`` is the CA's PEM, which a
client must trust to verify the server's certificate (issued for 127.0.0.1 and localhost).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType

import trustme

from batchgate.sim import SimConfig, SimHandle, start_in_thread


class TlsUpstream:
    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca_file = str(directory / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.sim: SimHandle = start_in_thread(SimConfig(), ssl=context)
        self.url = self.sim.url

    def stop(self) -> None:
        self.sim.stop()

    def __enter__(self) -> TlsUpstream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
