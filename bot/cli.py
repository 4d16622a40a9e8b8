"""`chatops` command line: web, worker, sandbox, emulators, bench."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from bot.errors import ConfigError


def _settings():
    """The settings of `chatops web` and `chatops worker`: both refuse the same missing values."""
    from bot.config import check_required, load_settings
    from bot.logs import configure_logging

    settings = check_required(load_settings())
    configure_logging(settings.CHATOPS_LOG_LEVEL)
    return settings


def cmd_web(args) -> int:
    from bot.services import Services
    from bot.web import create_app, serve

    services = Services(_settings())
    server = serve(create_app(services), args.host, args.port)
    print(json.dumps({"web": f"http://{args.host}:{server.server_port}"}), flush=True)
    _wait_for_signal()
    server.shutdown()
    services.close()
    return 0


def cmd_worker(args) -> int:
    from bot.services import Services
    from bot.worker import Worker

    services = Services(_settings())
    if args.metrics_port is not None:
        port = services.metrics.serve(args.metrics_port, args.metrics_host)
        print(json.dumps({"metrics": f"http://{args.metrics_host}:{port}/metrics"}), flush=True)
    Worker(services, workers=args.threads).run_forever()
    services.close()
    return 0


def cmd_emulators(args) -> int:
    from sandbox.stack import EmulatorStack, sandbox_env

    stack = EmulatorStack().start()
    stack.bot_url = args.bot_url.rstrip("/")  # where the PagerDuty emulator delivers its webhooks
    print(json.dumps(stack.urls()), flush=True)
    # For `chatops web` / `chatops worker` in other shells: the environment that points them here.
    env = sandbox_env(stack, Path(args.data_dir))
    print("# the bot's environment for these emulators:", file=sys.stderr)
    for name, value in sorted(env.items()):
        print(f"export {name}={shlex.quote(value)}", file=sys.stderr, flush=True)
    print(
        f"# PagerDuty webhooks go to {stack.bot_url}/pagerduty/webhook (start `chatops web --port "
        f"{_port_of(stack.bot_url)}` there, or pass --bot-url)\n"
        '# what the bot posted, e.g. in #ops: curl -s -H "Authorization: Bearer $SLACK_BOT_TOKEN" '
        '"${SLACK_API_URL}conversations.history?channel=C_OPS"',
        file=sys.stderr,
        flush=True,
    )
    _wait_for_signal()
    stack.stop()
    return 0


def _port_of(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or 80


def cmd_sandbox(args) -> int:
    from sandbox.main import run_sandbox

    return run_sandbox(script=args.script, data_dir=args.data_dir)


def cmd_bench(args) -> int:
    from bench import run_benchmark

    return run_benchmark(args.name, as_json=args.json, options=args.options or [])


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: done.set())
    done.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatops", description="Slack ChatOps bot for Alibaba Cloud")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "web", help="the HTTP app (dev server; production runs gunicorn 'bot.web:create_app()')"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(fn=cmd_web)

    p = sub.add_parser("worker", help="background jobs, periodic work and the MNS consumer")
    p.add_argument("--threads", type=int, default=4, help="job threads (default 4)")
    p.add_argument(
        "--metrics-port", type=int, help="serve the worker's Prometheus metrics on this port (0: a free one)"
    )
    p.add_argument("--metrics-host", default="127.0.0.1", help="the address for --metrics-port")
    p.set_defaults(fn=cmd_worker)

    p = sub.add_parser("sandbox", help="emulators + web + worker in one process, with a console")
    p.add_argument("--script", metavar="FILE", help="run console lines from FILE ('-' = stdin) and exit")
    p.add_argument("--data-dir", help="keep the sandbox's data here (default: a temporary directory)")
    p.set_defaults(fn=cmd_sandbox)

    p = sub.add_parser("emulators", help="the emulators alone; prints their base URLs as JSON")
    p.add_argument("--data-dir", default="./.chatops", help="CHATOPS_DATA_DIR in the printed environment")
    p.add_argument(
        "--bot-url",
        default="http://127.0.0.1:8080",
        help="the separately started `chatops web` the PagerDuty emulator sends webhooks to",
    )
    p.set_defaults(fn=cmd_emulators)

    p = sub.add_parser("bench", help="run a benchmark (NAME or 'all'); the last line is JSON")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print only JSON")
    p.add_argument("options", nargs="*", help="benchmark options as key=value")
    p.set_defaults(fn=cmd_bench)

    return parser


def subcommand_names() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Like parse_args, but benchmark options (key=value) may also follow --json."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command != "bench" or not all("=" in e and not e.startswith("-") for e in extra):
            parser.error("unrecognized arguments: " + " ".join(extra))
        args.options = [*(args.options or []), *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"chatops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
