"""Serve the example app in app/ with waitress.

    python run.py                      # http://127.0.0.1:8000
    python run.py --port 9000          # or PORT=9000 python run.py
    python run.py --host 0.0.0.0       # or HOST=0.0.0.0: reachable from other machines
    python run.py --reload             # restart when a .py or .html file in app/, or a file in public/, changes

`application` is an ordinary WSGI callable, so any WSGI server can serve it:

    waitress-serve --listen=127.0.0.1:8000 run:application
    gunicorn run:application
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

from minirouter import (
    App,
    StartupError,
    exit_with_reloader,
    free_port,
    local_allowed_hosts,
    run_with_reloader,
    waitress_options,
)

HERE = Path(__file__).resolve().parent

# One line per request on the minirouter.access logger; errors and warnings
# (a handler that raised, a route.py beside a page.html) on "minirouter".
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("minirouter.access").setLevel(logging.INFO)


def configured_hosts() -> list[str] | None:
    """ALLOWED_HOSTS=example.com,.example.com: the names a deployed app answers to."""
    names = [name.strip() for name in os.environ.get("ALLOWED_HOSTS", "").split(",") if name.strip()]
    return names or None


def create_app(allowed_hosts: list[str] | None = None) -> App:
    """The example app: the routes in app/, the files in public/ beside it."""
    return App(str(HERE / "app"), allowed_hosts=allowed_hosts)


if __name__ != "__main__":
    # Imported by a WSGI server: waitress-serve run:application, gunicorn run:application.
    # Run as a script, main() builds it, and only in the process that serves: the
    # --reload watcher never imports a route, so one that fails cannot stop it.
    application = create_app(configured_hosts())


def route_table(app: App) -> str:
    """One line per route: its methods, its URL and the file behind it."""
    lines = []
    for route in app.route_table():
        try:
            file = Path(route.file).relative_to(HERE)
        except ValueError:
            file = Path(route.file)
        lines.append(f"  {' '.join(route.methods):<40} {route.url:<24} {file.as_posix()}")
    return "\n".join(lines)


def port_number(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port), for --port and PORT."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 0 to 65535")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve app/ with waitress.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"),
                        help="address to listen on (env HOST, default 127.0.0.1)")
    # A string default goes through type= too, so a bad PORT is refused like a bad --port.
    parser.add_argument("--port", type=port_number, default=os.environ.get("PORT", "8000"),
                        help="port to listen on, 0 for any free port (env PORT, default 8000)")
    parser.add_argument("--reload", action="store_true",
                        help="restart when a .py, .html or public/ file changes")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="also answer to this host name (env ALLOWED_HOSTS, comma-separated); "
                             "on 127.0.0.1 only this machine's names and these are served")
    args = parser.parse_args(argv)
    try:
        import waitress
    except ImportError:  # checked first: with --reload, no save could help
        print("waitress is not installed: pip install -r requirements.txt", file=sys.stderr)
        return 1
    if args.reload:
        # This process only watches; it runs the server, without --reload, as a child it restarts.
        # Port 0 is chosen once, here: each restarted server would otherwise listen somewhere new.
        port = args.port or free_port(args.host)
        command = [sys.executable, str(HERE / "run.py"), "--host", args.host, "--port", str(port)]
        command += [f"--allowed-host={name}" for name in args.allowed_host]
        return run_with_reloader(command, [str(HERE / "app"), str(HERE / "public")],
                                 listen=(args.host, port))
    # When run.py --reload started this server: stop if it is killed, and at once on
    # SIGTERM (a restart), not after waitress's 5 s wait for requests in flight.
    reloaded = exit_with_reloader()
    # Served on this machine only, the app answers to this machine's own names: a web
    # page whose domain is made to resolve to 127.0.0.1 (DNS rebinding) is refused.
    hosts = (configured_hosts() or []) + args.allowed_host + local_allowed_hosts(args.host)
    try:
        app = create_app(allowed_hosts=hosts or None)
    except StartupError as error:  # a route that fails to import, two folders for one URL...
        cause = error.__cause__  # where in the route it failed (a syntax error is whole in the message)
        if cause is not None and not isinstance(cause, SyntaxError):
            traceback.print_exception(type(cause), cause, cause.__traceback__)
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a name in --allowed-host or ALLOWED_HOSTS that is no host name
        parser.error(str(error))

    try:
        # waitress reads a whole body before the app sees it: give it the app's
        # max_body_size so an oversized upload is refused before it is read.
        server = waitress.create_server(app, host=args.host, port=args.port, **waitress_options(app))
    except ValueError as error:  # a --host that is not an address
        parser.error(f"cannot listen on {args.host}:{args.port}: {error}")
    except OSError as error:  # most often: the port is taken
        hint = "; try another --port" if error.errno == errno.EADDRINUSE else ""
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}{hint}", file=sys.stderr)
        return 1
    print(f"minirouter serving {HERE / 'app'} at http://{_host_for_url(args.host)}:{server.effective_port}")
    print(route_table(app))
    print("Press Ctrl-C to stop.", flush=True)

    # SIGTERM (docker stop, systemd) stops as cleanly as Ctrl-C does.
    if not reloaded:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        server.run()  # returns when interrupted
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("stopped", flush=True)
    return 0


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
