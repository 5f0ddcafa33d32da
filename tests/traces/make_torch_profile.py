#!/usr/bin/env python3
"""Writes a real PyTorch profiler trace for `chunkflow profile`: a two-layer MLP trained for
three steps on the CPU under torch.profiler.profile with a schedule, the trace exported by
on_trace_ready. torch 2.x (and 1.x built with Kineto) writes Kineto's JSON object; Debian's
python3-torch 1.13 has no Kineto and writes the bare event list of the legacy profiler.

Usage: make_torch_profile.py OUT.json
"""
import sys

import torch


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs, targets = torch.randn(32, 64), torch.randn(32, 64)

    def export(prof):
        prof.export_chrome_trace(out)

    # One warm-up step before the three recorded ones: torch 1.13's fallback to the legacy
    # profiler records the ProfilerStep#N ranges of a schedule only after a warm-up.
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=3, repeat=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                schedule=schedule, on_trace_ready=export) as prof:
        for _ in range(4):
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            prof.step()
    print(f"torch {torch.__version__}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
