"""Command line: parse flags, set up the device, load the models file, listen, print one line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

DESCRIPTION = """\
sdgate's inference worker: runs Stable Diffusion 1.5, SDXL (with refiner) and SD3 pipelines with
diffusers and serves them over a small HTTP+JSON protocol (GET /health, GET /models, POST /generate;
see Worker/README.md). Prints exactly one line to stdout once it accepts connections:
    sdgate-worker listening on HOST:PORT      or      sdgate-worker listening on unix:PATH
Logs go to stderr.

Authentication: with SDGATE_WORKER_TOKEN set in its environment, the worker answers only requests
that carry `Authorization: Bearer <token>` (GET /health stays open). A gateway sets it for the workers
it spawns; for a worker on another host, set the same value here and in the gateway's
local.remote_worker_token_env. Listening beyond loopback without a token is refused."""

TOKEN_VARIABLE = "SDGATE_WORKER_TOKEN"


def listens_beyond_loopback(listen: str) -> bool:
    """Whether HOST:PORT can be reached from other hosts (a Unix socket or a loopback address cannot)."""
    if listen.startswith("unix:"):
        return False
    host = listen.rpartition(":")[0].strip("[]")
    return host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("127.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m sdgate_worker", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, metavar="FILE",
                   help="the worker's models file (YAML): weights folders or Hugging Face repo ids per model name")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="ADDRESS",
                   help="HOST:PORT (port 0 picks a free one) or unix:PATH (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to run; auto is cuda when a GPU is visible (default: %(default)s)")
    p.add_argument("--gpu", metavar="IDS",
                   help="set CUDA_VISIBLE_DEVICES to IDS before CUDA starts (one GPU per worker)")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                   help="weights precision; auto is float16 on cuda, float32 on cpu (default: %(default)s)")
    p.add_argument("--memory-budget-gb", type=float, metavar="GB",
                   help="unload least recently used weights beyond this size (default: 85%% of the GPU's "
                        "memory on cuda, no limit on cpu)")
    p.add_argument("--preload", action="append", default=[], metavar="MODEL",
                   help="load this model's weights before listening (repeatable)")
    p.add_argument("--max-body-mb", type=float, default=64.0, metavar="MB",
                   help="largest request body accepted (default: %(default)s)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads torch may use")
    p.add_argument("--hf-cache", metavar="DIR", help="Hugging Face cache folder (default: the hub's own)")
    p.add_argument("--allow-downloads", action="store_true",
                   help="let from_pretrained download missing repo files (default: the local cache only)")
    p.add_argument("--enable-fault-injection", action="store_true",
                   help="accept inject_fault in generate requests and POST /faults/release (tests only)")
    p.add_argument("--exit-with-parent", type=int, metavar="PID",
                   help="exit when process PID (the gateway that started this worker) is gone, even if it was "
                        "killed without a chance to stop the worker")
    p.add_argument("--max-batch", type=_positive, default=1, metavar="N",
                   help="run up to N images of compatible requests as one pipeline call, and take up to N "
                        "requests at once (default: %(default)s, no batching)")
    p.add_argument("--batch-window-ms", type=_non_negative, default=0.0, metavar="MS",
                   help="how long the oldest waiting request waits for others to join its batch; 0 turns "
                        "batching off (default: %(default)s)")
    p.add_argument("--max-connections", type=_connections, metavar="N",
                   help="serve at most N connections at once; at the limit a new one closes the one that has "
                        "waited longest for a request (default: --max-batch + 32)")
    p.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"),
                   help="UNet and VAE in channels-last memory layout; auto is on for cuda (default: %(default)s)")
    p.add_argument("--vae-tiling-above-mp", type=_megapixels, default=2.0, metavar="MP",
                   help="decode images larger than MP megapixels in tiles, so that the VAE fits in memory; "
                        "0 tiles every image (default: %(default)s)")
    p.add_argument("--compile", default="off", choices=("off", "default", "reduce-overhead", "max-autotune"),
                   help="torch.compile the denoiser in this mode; preloaded models are warmed up before the "
                        "worker listens (default: %(default)s)")
    p.add_argument("--compile-backend", default="inductor", metavar="NAME",
                   help="torch.compile backend (default: %(default)s)")
    p.add_argument("--warmup-size", type=_size, metavar="WxH",
                   help="image size of the warm-up generation with --compile (default: 512x512 for SD 1.5, "
                        "1024x1024 for SDXL and SD3)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be between 0 and 10000")
    return value


def _connections(text: str) -> int:
    value = int(text)
    if not 3 <= value <= 1024:
        raise argparse.ArgumentTypeError("must be between 3 and 1024")
    return value


def _megapixels(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 0 and 1000")
    return value


def _size(text: str) -> tuple[int, int]:
    from .warmup import parse_size
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"WxH, {error}") from None


def _exit_with_parent(pid: int) -> None:
    """Watches, from a daemon thread, for the parent to go: the worker is then re-parented, so its
    parent id changes. SIGTERM stops it as the gateway would; a worker deep in a generation that
    ignores it for 10 s is ended outright, so that it never holds a GPU for a gateway that is gone."""
    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(1)
        logging.getLogger("sdgate_worker").warning("the gateway (pid %d) is gone; stopping", pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.pop(TOKEN_VARIABLE, "") or None
    if token is None and listens_beyond_loopback(args.listen):
        print(f"sdgate-worker: --listen {args.listen} can be reached from other hosts, and anyone who reaches it could "
              f"generate for free: set {TOKEN_VARIABLE} (and the gateway's local.remote_worker_token_env), "
              "or listen on 127.0.0.1", file=sys.stderr)
        return 2
    if args.max_connections is not None and args.max_connections < args.max_batch + 2:
        # A full batch, and beside it a health check and a cancel.
        print(f"sdgate-worker: --max-connections {args.max_connections} must be at least --max-batch + 2 "
              f"({args.max_batch + 2})", file=sys.stderr)
        return 2
    if args.exit_with_parent is not None:
        _exit_with_parent(args.exit_with_parent)
    if args.gpu is not None:
        # Must happen before torch initialises CUDA, hence before importing it.
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    from pathlib import Path

    from .catalog import CatalogError, load_catalog
    try:
        # Before the slow imports, so a broken file fails at once.
        catalog = load_catalog(Path(args.models))
    except CatalogError as error:
        print(f"sdgate-worker: {error}", file=sys.stderr)
        return 2
    unknown = [name for name in args.preload if name not in catalog.models]
    if unknown:
        print(f"sdgate-worker: --preload {', '.join(unknown)}: not in {args.models}", file=sys.stderr)
        return 2

    from .runtime import choose_device, choose_dtype, default_budget, quiet_libraries
    quiet_libraries()
    import torch

    from .engine import Engine
    from .errors import WorkerError
    from .faults import FaultInjector
    from .model_store import ModelStore
    from .server import WorkerContext, make_server
    from .tuning import Tuning, tune_pipeline
    from .warmup import warm_up

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = choose_device(args.device)
    except ValueError as error:
        print(f"sdgate-worker: {error}", file=sys.stderr)
        return 2
    dtype = choose_dtype(args.dtype, device)
    budget = (int(args.memory_budget_gb * 2**30) if args.memory_budget_gb is not None
              else default_budget(device))
    tuning = Tuning(channels_last=args.channels_last == "on" or (args.channels_last == "auto" and device.type == "cuda"),
                    vae_tiling_pixels=int(args.vae_tiling_above_mp * 1_000_000),
                    compile_backend=None if args.compile == "off" else args.compile_backend,
                    compile_mode=None if args.compile in ("off", "default") else args.compile)
    store = ModelStore(catalog, device, dtype, budget, allow_downloads=args.allow_downloads,
                       cache_dir=args.hf_cache, on_load=lambda pipeline: tune_pipeline(pipeline, tuning))
    engine = Engine(catalog, store, FaultInjector(args.enable_fault_injection), tuning)
    batching = args.max_batch > 1 and args.batch_window_ms > 0
    try:
        for name in args.preload:
            store.acquire(catalog.models[name].all_weights())
            if tuning.compile_backend is not None:
                warm_up(engine, name, args.warmup_size, args.max_batch if batching else 1)
    except WorkerError as error:
        print(f"sdgate-worker: --preload: {error.message}", file=sys.stderr)
        return 2
    batcher = None
    if batching:
        from .batching import Batcher
        batcher = Batcher(engine, args.max_batch, args.batch_window_ms / 1000)
    context = WorkerContext(engine, int(args.max_body_mb * 2**20), device.type, str(dtype).removeprefix("torch."),
                            budget, token, batcher)
    server, address = make_server(args.listen, context, args.max_connections)
    # SIGTERM (the gateway stopping a worker) ends serve_forever the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"sdgate-worker listening on {address}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if address.startswith("unix:"):
            try:
                os.unlink(address[len("unix:"):])
            except FileNotFoundError:
                pass
    return 0
