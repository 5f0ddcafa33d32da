#!/usr/bin/env python3
"""Trains a Qwen2-style model, built from a chunkflow model YAML, on the chunks of a chunkflow
plan for a few steps on the CPU under the PyTorch profiler, and writes the profile: the real
measurement `chunkflow calibrate --from-profile` fits and `chunkflow compare` holds a
prediction against (tests/traces/profile_loop_test.cc).

The model follows the YAML: token embedding, `layers` blocks of RMSNorm, Q/K/V projections
(with bias when qkv_bias), rotary embedding (rope_theta) restarted at each packed sequence,
grouped-query attention with a causal mask per packed sequence, output projection, RMSNorm,
SwiGLU MLP (gate, up, down), a final RMSNorm and an LM head (tied when tied_embeddings). The
attention is eager PyTorch (two batched matmuls around a masked softmax per sequence), so the
model YAML should say `attention: unfused`. fp32, as the CPU runs it.

One step follows the plan's op stream of its one stage: F of a chunk runs the forward and keeps
the graph, B runs the backward of that chunk's loss; then AdamW. With --marks each op runs
inside `torch.profiler.record_function` ranges named by docs/PROFILES.md's convention:
"chunkflow:F:chunk=C", "chunkflow:B:chunk=C", "chunkflow:optimizer". The plan must be of one
stage and one data-parallel rank with standalone chunks (no split sequences), as
`chunkflow plan JOB --json` prints it.

torch 2.x (and 1.x built with Kineto) exports Kineto's JSON itself. Debian's torch 1.13 has no
Kineto and its legacy export drops the input shapes a calibration needs, so the script writes
the profiler's events in Kineto's schema: a "traceEvents" list of complete events, cat
"cpu_op" (user_annotation for record_function ranges), ts and dur in microseconds, args
"Input Dims" as torch.profiler's events record them (record_shapes=True). --legacy writes the
legacy export instead (no shapes).

Usage: make_qwen2_profile.py --model M.yaml --plan PLAN.json --out OUT.json
       [--steps N] [--warmup N] [--marks] [--legacy] [--threads N] [--seed S]
"""
import argparse
import json
import math
import sys

import torch
import yaml


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, d = cfg["hidden"], cfg["head_dim"]
        self.heads, self.kv_heads, self.head_dim = cfg["heads"], cfg["kv_heads"], d
        bias = bool(cfg.get("qkv_bias", False))
        self.norm1 = RMSNorm(h, cfg["rms_norm_eps"])
        self.q = torch.nn.Linear(h, self.heads * d, bias=bias)
        self.k = torch.nn.Linear(h, self.kv_heads * d, bias=bias)
        self.v = torch.nn.Linear(h, self.kv_heads * d, bias=bias)
        self.o = torch.nn.Linear(self.heads * d, h, bias=False)
        self.norm2 = RMSNorm(h, cfg["rms_norm_eps"])
        self.gate = torch.nn.Linear(h, cfg["ffn_hidden"], bias=False)
        self.up = torch.nn.Linear(h, cfg["ffn_hidden"], bias=False)
        self.down = torch.nn.Linear(cfg["ffn_hidden"], h, bias=False)

    def attention(self, x, cos, sin, lengths):
        t = x.shape[0]
        q = self.q(x).view(t, self.heads, self.head_dim).transpose(0, 1)
        k = self.k(x).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
        v = self.v(x).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = self.heads // self.kv_heads
        k = k.repeat_interleave(group, dim=0)
        v = v.repeat_interleave(group, dim=0)
        outputs, start = [], 0
        for length in lengths:
            end = start + length
            scores = torch.matmul(q[:, start:end], k[:, start:end].transpose(1, 2))
            scores = scores / math.sqrt(self.head_dim)
            mask = torch.ones(length, length, dtype=torch.bool).triu(1)
            probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
            outputs.append(torch.matmul(probs, v[:, start:end]))
            start = end
        out = torch.cat(outputs, dim=1).transpose(0, 1).reshape(t, self.heads * self.head_dim)
        return self.o(out)

    def forward(self, x, cos, sin, lengths):
        x = x + self.attention(self.norm1(x), cos, sin, lengths)
        h = self.norm2(x)
        return x + self.down(torch.nn.functional.silu(self.gate(h)) * self.up(h))


class Qwen2Style(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = torch.nn.Embedding(cfg["vocab"], cfg["hidden"])
        self.blocks = torch.nn.ModuleList(Block(cfg) for _ in range(cfg["layers"]))
        self.norm = RMSNorm(cfg["hidden"], cfg["rms_norm_eps"])
        self.head = torch.nn.Linear(cfg["hidden"], cfg["vocab"], bias=False)
        if cfg.get("tied_embeddings", False):
            self.head.weight = self.embed.weight
        d = cfg["head_dim"]
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2).float() / d))

    def rope(self, lengths):
        positions = torch.cat([torch.arange(n, dtype=torch.float32) for n in lengths])
        angles = torch.outer(positions, self.inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()

    def forward(self, tokens, lengths):
        cos, sin = self.rope(lengths)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin, lengths)
        return self.head(self.norm(x))


def load_model_yaml(path):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    if cfg.get("architecture") not in ("qwen2", "llama"):
        raise SystemExit(f"{path}: architecture {cfg.get('architecture')!r}: qwen2 or llama only")
    cfg.setdefault("head_dim", cfg["hidden"] // cfg["heads"])
    return cfg


def load_plan(path):
    with open(path) as f:
        plan = json.load(f)
    if plan["pp"] != 1 or plan["dp"] != 1 or plan.get("vpp", 1) != 1:
        raise SystemExit(f"{path}: one stage and one data-parallel rank only")
    chunks = {c["id"]: c for c in plan["chunks"]}
    for chunk in chunks.values():
        if chunk["kind"] != "standalone":
            raise SystemExit(f"{path}: chunk {chunk['id']} is {chunk['kind']}: standalone only")
    ops = plan["ranks"][0]["stages"][0]["ops"]
    return chunks, [(op["op"], op["chunk"]) for op in ops]


class NoMark:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def marker(enabled):
    """record_function ranges when enabled, else nothing."""
    if enabled:
        return torch.profiler.record_function
    return lambda name: NoMark()


def kineto_events(prof):
    """The profiler's events as Kineto writes a CPU-only trace."""
    events = []
    for e in prof.events():
        start, end = e.time_range.start, e.time_range.end
        name = e.trace_name  # "ProfilerStep#N" where e.name is "ProfilerStep*"
        event = {"ph": "X", "cat": "cpu_op", "name": name, "pid": 0, "tid": int(e.thread),
                 "ts": float(start), "dur": float(end - start),
                 "args": {"Input Dims": [list(s) for s in e.input_shapes]}}
        if name.startswith("chunkflow:") or name.startswith("ProfilerStep#"):
            event["cat"] = "user_annotation"
            event["args"] = {}
        events.append(event)
    events.sort(key=lambda ev: (ev["ts"], -ev["dur"]))
    return {"schemaVersion": 1, "traceEvents": events,
            "deviceProperties": [], "traceName": "make_qwen2_profile.py"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--marks", action="store_true")
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cfg = load_model_yaml(args.model)
    chunks, ops = load_plan(args.plan)
    model = Qwen2Style(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    mark = marker(args.marks)
    data = {cid: torch.randint(0, cfg["vocab"], (c["tokens"] + 1,)) for cid, c in chunks.items()}

    def step():
        losses = {}
        for op, cid in ops:
            if op == "F":
                with mark(f"chunkflow:F:chunk={cid}"):
                    tokens = data[cid]
                    lengths = [s[2] for s in chunks[cid]["segments"]]
                    logits = model(tokens[:-1], lengths)
                    losses[cid] = torch.nn.functional.cross_entropy(logits, tokens[1:])
            elif op == "B":
                with mark(f"chunkflow:B:chunk={cid}"):
                    losses.pop(cid).backward()
            else:
                raise SystemExit(f"{args.plan}: op {op}: F and B only")
        with mark("chunkflow:optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=args.steps, repeat=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                schedule=schedule, record_shapes=True) as prof:
        for _ in range(args.steps + 1):
            step()
            prof.step()
    if args.legacy or torch.autograd.kineto_available():
        prof.export_chrome_trace(args.out)
    else:
        with open(args.out, "w") as f:
            json.dump(kineto_events(prof), f)
    print(f"torch {torch.__version__}: {args.steps} steps of {len(ops)} ops written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
