"""A burst of PDFs published together, pulled over a link that is cut every 20 s.

    .venv/bin/python bench/bench_burst.py [--profile 2G] [--pdfs 10] [--cut-every 20] [--down-for 2]
        [--max-runs 12]

The province publishes ``--pdfs`` articles with a 100 KB PDF each in one write, so
they land in one replication batch. Our replicator fetches attachments of at most
``INLINE_ATTACHMENT_BYTES`` (256 KB) inline, base64, in ONE ``_bulk_get`` for the
whole batch: a request whose size grows with the batch and that restarts from its
first byte after every cut. Larger attachments go one by one with ``Range`` and
resume after a cut.

This script pulls the burst from a pouchdb-server hub through a LinkProxy, twice:
as the replicator is (``inline``), and with ``INLINE_ATTACHMENT_BYTES = 0`` patched
in this process (``range``: every attachment by its own resumable GET), re-running
failed runs as the scheduler would, and prints runs, bytes and time for each.
The replicator runs in this process (the proxy in a thread of it). Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cell_dataset as dataset
from bench_links import Hub, fmt_bytes, log
from linkproxy import PROFILES, LinkProxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["3G", "2G"], default="2G")
    parser.add_argument("--pdfs", type=int, default=10)
    parser.add_argument("--cut-every", type=float, default=20.0)
    parser.add_argument("--down-for", type=float, default=2.0)
    parser.add_argument("--max-runs", type=int, default=12)
    args = parser.parse_args(argv)

    import random

    from replication import replicate
    from replication import replicator as replicator_module
    from replication.http_peer import HttpPeer
    from replication.local_peer import LocalPeer
    from sync_server.store import Server

    rng = random.Random(dataset.SEED)
    docs = [dataset.meeting(rng) for _ in range(20)]
    docs += [dataset.article(i, rng, dataset.pdf_bytes(i)) for i in range(args.pdfs)]
    payload = dataset.payload_bytes(docs)
    down = PROFILES[args.profile][0]
    assert down is not None
    tmp = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    hub = Hub("pouchdb", tmp / "hub")
    lines = [f"`.venv/bin/python bench/bench_burst.py {' '.join(sys.argv[1:] if argv is None else argv)}`", "",
             f"{len(docs)} docs in one write ({args.pdfs} articles with a 100 KB PDF): physical payload "
             f"{fmt_bytes(payload.gzip_total)}, {payload.gzip_total * 8 / down:.0f} s of {args.profile} link; "
             f"cut every {args.cut_every:g} s, down {args.down_for:g} s after each.", "",
             "| attachments | complete | runs | down | up | x payload | time (s) |", "|---|---|---:|---:|---:|---:|---:|"]
    try:
        hub.start()
        dataset.load(f"http://127.0.0.1:{hub.port}", "cell", docs)
        shipped = replicator_module.INLINE_ATTACHMENT_BYTES
        for mode in ("as shipped", "range"):
            replicator_module.INLINE_ATTACHMENT_BYTES = shipped if mode == "as shipped" else 0
            runs = []
            started = time.monotonic()
            with LinkProxy.profile(args.profile, hub.port, cut_every=args.cut_every, down_for=args.down_for) as link:
                while len(runs) < args.max_runs:
                    server = Server(tmp / f"kiosk-{mode}")
                    source = HttpPeer(f"http://127.0.0.1:{link.port}/cell")
                    try:
                        runs.append(replicate(source, LocalPeer(server, "cell")))
                    finally:
                        source.close()
                        server.close()
                    log(f"{mode} run {len(runs)}: ok={runs[-1].ok} written={runs[-1].docs_written} "
                        f"error={runs[-1].error}")
                    if runs[-1].ok:
                        break
                time.sleep(1.0)
                stats = link.stats.snapshot()
            elapsed = time.monotonic() - started
            lines.append(f"| {mode} | {'yes' if runs[-1].ok else 'NO'} | {len(runs)} | {fmt_bytes(stats.bytes_down)} "
                         f"| {fmt_bytes(stats.bytes_up)} | {stats.bytes_down / payload.gzip_total:.2f} "
                         f"| {elapsed:.0f} |")
    finally:
        hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
