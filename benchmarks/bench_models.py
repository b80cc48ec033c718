"""Forward cost of each generator preset per inference window (batch 1).

    python -m benchmarks.bench_models                       # CPU, paper preset at 256² only
    python -m benchmarks.bench_models --full                # CPU, paper preset at 512² too
    python -m benchmarks.bench_models --device cuda         # fp32, fp16 and bf16 autocast

Prints one table; times are medians of repeated runs after a warm-up, in one process, so rows are
comparable with each other (not across machines or loads).
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext


def _time_forward(model, x, device, amp_dtype, min_seconds: float, max_reps: int) -> tuple[float, int]:
    import torch

    ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()

    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode(), ctx:
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()                                   # warm-up: allocator, cuDNN algorithm choice
    if device.type == "cuda":
        once()
    times = [once()]
    while len(times) < max_reps and sum(times) < min_seconds:
        times.append(once())
    return statistics.median(times), len(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    parser.add_argument("--families", nargs="+", default=["pix2pix", "vqgan"])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "small-noattn", "paper"],
                        help="preset names; '<preset>-noattn' = that VQGAN preset without the "
                             "mid attention (its cost grows with the square of the window area)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--full", action="store_true", help="on CPU, also the paper preset at 512²")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="time spent per row")
    parser.add_argument("--max-reps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from models.registry import ARCHITECTURES, build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precisions = {"fp32": None}
    if device.type == "cuda":
        precisions.update(fp16=torch.float16, bf16=torch.bfloat16)
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, device {device} ({name}), batch 1, median of reps")
    header = f"{'family':8} {'preset':12} {'params':>8} {'window':>7} {'prec':4} {'ms/window':>10} " \
             f"{'windows/s':>9} {'reps':>4}"
    print(header)
    print("-" * len(header))
    for family in args.families:
        config_cls = ARCHITECTURES[family][1]
        for preset in args.presets:
            base, _, variant = preset.partition("-")
            if variant and (family != "vqgan" or variant != "noattn"):
                continue                       # the only variant is VQGAN without attention
            overrides = {"attention": False} if variant else {}
            torch.manual_seed(0)
            model = build_model(family, config_cls.preset(base, **overrides)).to(device).eval()
            params = sum(p.numel() for p in model.parameters()) / 1e6
            for size in args.sizes:
                if device.type == "cpu" and base == "paper" and size > 256 and not args.full:
                    print(f"{family:8} {preset:12} {params:7.2f}M {size:>5}² {'fp32':4} "
                          f"{'skipped (--full)':>10}")
                    continue
                x = torch.randn(1, model.config.in_channels, size, size, device=device)
                for prec, dtype in precisions.items():
                    seconds, reps = _time_forward(model, x, device, dtype, args.min_seconds,
                                                  args.max_reps)
                    print(f"{family:8} {preset:12} {params:7.2f}M {size:>5}² {prec:4} "
                          f"{seconds * 1e3:10.1f} {1 / seconds:9.2f} {reps:>4}", flush=True)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
