"""A loopback SMTP server for the notify tests: aiosmtpd (PyPI), an independent implementation.

    python3 smtpd.py PORT OUT_DIR [--tls CERT KEY] [--auth USER PASSWORD]

With --tls the server offers STARTTLS and requires it before anything else; with --auth it
requires AUTH (PLAIN/LOGIN, only over TLS) with that user and password. Each accepted message
is written to OUT_DIR/<n>.json as {"from", "to", "data"}; "ready" is printed once the server
answers, and it stops when its stdin closes.
"""

import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    args = sys.argv[1:]
    port, out = int(args[0]), args[1]
    tls = auth = None
    rest = args[2:]
    while rest:
        if rest[0] == "--tls":
            tls, rest = (rest[1], rest[2]), rest[3:]
        elif rest[0] == "--auth":
            auth, rest = (rest[1].encode(), rest[2].encode()), rest[3:]
        else:
            sys.exit(f"unknown argument {rest[0]}")

    class Handler:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            path = os.path.join(out, f"{Handler.count}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(
                    {
                        "from": envelope.mail_from,
                        "to": envelope.rcpt_tos,
                        "data": envelope.content.decode("utf-8", "replace"),
                    },
                    f,
                )
            os.rename(path + ".tmp", path)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == auth
        return AuthResult(success=ok, handled=False)

    kwargs = {}
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        kwargs.update(tls_context=context, require_starttls=True)
    if auth:
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(tls))
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


main()
