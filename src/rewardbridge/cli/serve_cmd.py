"""``rewardbridge serve``: the reward server (OpenRLHF protocol and native batch API)."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import fields

from rewardbridge.cli.verifier_args import add_verifier_arguments, verifier_from_args
from rewardbridge.serving.config import ServerConfig

logger = logging.getLogger(__name__)

TOKEN_ENV = "REWARDBRIDGE_AUTH_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a verifier over HTTP (OpenRLHF /get_reward, /v1/judge, /metrics)",
        description="Serve a verifier as a reward service with dynamic batching. "
        "Listens on 127.0.0.1 unless --host says otherwise.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    add_verifier_arguments(p)
    g = p.add_argument_group("serving")
    d = ServerConfig()  # the flags' defaults are the config's
    g.add_argument(
        "--max-batch-size",
        type=int,
        default=d.max_batch_size,
        help="most items per verifier batch; also the model batch unless "
        "--verifier-batch-size is given (default: %(default)s)",
    )
    g.add_argument(
        "--max-wait-ms",
        type=float,
        default=d.max_wait_ms,
        help="longest wait for a batch to fill (default: %(default)s)",
    )
    g.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help="items allowed to wait; beyond it 503 + Retry-After (default: %(default)s)",
    )
    g.add_argument(
        "--request-timeout",
        dest="request_timeout_s",
        type=float,
        default=d.request_timeout_s,
        help="seconds before a request's unfinished items answer 'timeout' (default: %(default)s)",
    )
    g.add_argument(
        "--max-body-bytes",
        type=int,
        default=d.max_body_bytes,
        help="largest request body; beyond it 413 (default: %(default)s)",
    )
    g.add_argument(
        "--auth-token",
        default=os.environ.get(TOKEN_ENV) or d.auth_token,
        help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV} if set)",
    )
    g.add_argument(
        "--fallback-reward",
        type=float,
        default=d.fallback_reward,
        metavar="R",
        help="reward OpenRLHF gets for an unjudged item (default: NaN, never a made-up 0: "
        "its score is NaN too, so OpenRLHF's --algo.dynamic_filtering_enable redraws its "
        "group; it is flagged in extra_logs['unjudged'] either way)",
    )
    g.add_argument(
        "--record",
        dest="record_path",
        metavar="FILE",
        default=d.record_path,
        help="append every judgment to FILE as distillation records (deduplicated, fsynced)",
    )
    g.add_argument(
        "--canaries",
        dest="canary_share",
        type=float,
        default=d.canary_share,
        metavar="SHARE",
        help="mix master-key probes into each batch (e.g. 0.05 per item); /health reports "
        "their false-positive rate (default: off)",
    )
    g.add_argument(
        "--canary-max-fpr",
        type=float,
        default=d.canary_max_fpr,
        metavar="FPR",
        help="warn when the canaries' false-positive rate is above it (default: %(default)s)",
    )
    g.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level",
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rewardbridge.serving.app import create_app

    config = server_config(args)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not config.auth_token:
        logger.warning(
            "serving on %s without --auth-token: anyone who reaches it can use it", args.host
        )
    if args.verifier_batch_size is None and _takes_batch_size(args.verifier):
        args.verifier_batch_size = args.max_batch_size  # one server batch = one model batch
    verifier = verifier_from_args(args)
    try:
        uvicorn.run(
            create_app(verifier, config),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,
        )
    finally:
        verifier.close()
    return 0


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The ``ServerConfig`` of the parsed flags: each field from the flag of the same dest."""
    values = {f.name: getattr(args, f.name) for f in fields(ServerConfig)}
    return ServerConfig(**values | {"auth_token": values["auth_token"] or None})


def _takes_batch_size(name: str) -> bool:
    from rewardbridge.verifiers.registry import verifier_config

    return "batch_size" in {f.name for f in fields(verifier_config(name))}
