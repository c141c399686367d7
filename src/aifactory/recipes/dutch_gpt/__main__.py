"""`python -m aifactory.recipes.dutch_gpt pretrain|finetune --config NAME [...]`, and
`… serve --from CHECKPOINT [--port N]`: the trained model behind the OpenAI API's shape (serve.py).

Exit codes: 0 done; 143 (`EXIT_PREEMPTED`) stopped by SIGTERM after writing a checkpoint, to be
resumed by running the same command again with the same checkpoint folder; 2 bad arguments;
3 (`EXIT_NO_TORCH`) this Python has no PyTorch (a facility set up by `make run` has none: the
message says how to add it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aifactory.recipes.dutch_gpt import EXIT_PREEMPTED
from aifactory.recipes.dutch_gpt.config import CONFIGS
from aifactory.recipes.dutch_gpt.run import (
    RunSpec,
    StopFlag,
    default_device,
    environment,
    process_env,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aifactory.recipes.dutch_gpt", description=__doc__)
    p.add_argument("kind", choices=["pretrain", "finetune", "serve"])
    p.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--steps", type=int, help="optimizer steps in all (default: the config's)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--eval-every", type=int, help="steps between evaluations")
    p.add_argument("--log-every", type=int, help="steps between train reports")
    p.add_argument(
        "--from", dest="init_from", type=Path, help="finetune, serve: checkpoint file/folder"
    )
    p.add_argument("--host", default="127.0.0.1", help="serve: the address to listen on")
    p.add_argument("--port", type=int, default=8001, help="serve: the port to listen on")
    p.add_argument("--name", default="dutch-gpt", help="serve: the model's name in the API")
    p.add_argument(
        "--socket",
        type=Path,
        help="serve: listen on this Unix socket (relative: to the working directory) instead",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="folder with dutch-books/ and dutch-eval/ "
        "(when the facility gives no AIFACTORY_DATASET_* variables; default: shipped)",
    )
    p.add_argument("--checkpoint-dir", type=Path, help="when AIFACTORY_CHECKPOINT_DIR is unset")
    p.add_argument("--progress", type=Path, help="when AIFACTORY_PROGRESS_FILE is unset")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when there is one")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="torch.compile the model (default: on a GPU only)",
    )
    return p


EXIT_NO_TORCH = 3
NO_TORCH = (
    "error: this recipe needs PyTorch (the extra aifactory[llm]), and {python} has none. "
    "On the facility's machine, in the aifactory checkout, run `make llm` "
    "(or `{python} -m pip install -e '.[llm]'`), then submit the job again."
)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        import torch  # noqa: F401  (loads after argument errors; is it there at all?)
    except ImportError:
        print(NO_TORCH.format(python=sys.executable), file=sys.stderr, flush=True)
        return EXIT_NO_TORCH
    if args.kind == "serve":
        return _serve(args)
    from aifactory.recipes.dutch_gpt.train import train

    config = CONFIGS[args.config].with_overrides(
        steps=args.steps,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        log_every=args.log_every,
    )
    device = args.device or default_device()
    if device == "cpu":
        _threads_as_allotted()
    compile_ = args.compile if args.compile is not None else device == "cuda"
    spec = RunSpec(args.kind, config, args.seed, args.init_from, device, compile_)
    env = environment(
        process_env(), data=args.data, checkpoint_dir=args.checkpoint_dir, progress=args.progress
    )
    stop = StopFlag()
    stop.install()
    result = train(spec, env, stop)
    return EXIT_PREEMPTED if result.preempted else 0


def _serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM (the facility's stop, a drain or a preemption), then end cleanly:
    no new connection is taken, and the requests in flight are answered first."""
    import signal
    import socketserver
    import threading

    from aifactory.recipes.dutch_gpt.generate import Generator
    from aifactory.recipes.dutch_gpt.serve import Engine, server, unix_server

    if args.init_from is None:
        print("error: serve needs --from CHECKPOINT (a file or a folder)", file=sys.stderr)
        return 2
    device = args.device or default_device()
    if device == "cpu":
        _threads_as_allotted()
    engine = Engine(Generator.from_checkpoint(args.init_from, device=device), args.name)
    listening: socketserver.BaseServer
    if args.socket is not None:
        path = args.socket.resolve()
        listening = unix_server(engine, path)
        print(f"[serve] model {args.name} on unix:{path}", flush=True)
    else:
        listening = server(engine, args.host, args.port)
        port = listening.server_address[1]
        print(f"[serve] model {args.name} on http://{args.host}:{port}/v1", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=listening.shutdown).start())
    listening.serve_forever()
    if args.socket is not None:
        path.unlink(missing_ok=True)  # the gateway sends nothing more here
    listening.server_close()  # after the requests in flight are answered
    return 0


def _threads_as_allotted() -> None:
    """As many threads as CPUs the facility gave the job (its affinity), not as the machine
    has: more would only contend with each other and with other jobs. OMP_NUM_THREADS wins."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))


if __name__ == "__main__":
    sys.exit(main())
