#!/usr/bin/python3
"""A real SMTP peer for the notifier tests (aiosmtpd, Debian's python3-aiosmtpd).

Each accepted message becomes two files in --dir: msg-NNNN.eml (the data, dot-unstuffed,
CRLF kept) and then msg-NNNN.envelope ("MAIL FROM:<...>" and one "RCPT TO:<...>" line per
recipient). The envelope file is written last and renamed into place, so a test that sees
it also sees the complete .eml.

--fail-first N answers 451 at the end of DATA for the first N deliveries; --reject RCPT
answers 550 to RCPT TO for that address (may be repeated).
"""

import argparse
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class SinkHandler:
    def __init__(self, directory, fail_first, rejects):
        self.directory = directory
        self.fail_left = fail_first
        self.rejects = {r.lower() for r in rejects}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.rejects:
            print(f"reject rcpt={address}", flush=True)
            return "550 5.1.1 recipient rejected by smtp_sink"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                print(f"tempfail from=<{envelope.mail_from}>", flush=True)
                return "451 4.3.0 smtp_sink temporary failure"
            self.count += 1
            base = os.path.join(self.directory, f"msg-{self.count:04d}")
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        # aiosmtpd reports the null reverse-path as the literal "<>".
        mail_from = "" if envelope.mail_from in ("", "<>") else envelope.mail_from
        lines = [f"MAIL FROM:<{mail_from}>"]
        lines += [f"RCPT TO:<{r}>" for r in envelope.rcpt_tos]
        with open(base + ".envelope.tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(base + ".envelope.tmp", base + ".envelope")
        print(f"stored {base} from=<{envelope.mail_from}> rcpts={len(envelope.rcpt_tos)}",
              flush=True)
        return "250 2.0.0 stored by smtp_sink"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--reject", action="append", default=[])
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    handler = SinkHandler(args.dir, args.fail_first, args.reject)
    controller = Controller(handler, hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"listening port={args.port}", flush=True)
    while not stop.wait(0.5):
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
