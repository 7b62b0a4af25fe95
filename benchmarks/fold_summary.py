"""Summarise py-spy collapsed stacks (``py-spy record -f raw``): where the samples are.

    python benchmarks/fold_summary.py profile.folded [--top 30] [--match sync/]

Prints, for each function, the share of samples in which it is on the stack (inclusive) and
at the top (self), so the CPU of every thread is visible - not only the main thread's.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    parser.add_argument(
        "--within", default="", help="only stacks with a frame containing this (e.g. Engine.run)"
    )
    parser.add_argument("--self", action="store_true", help="order by self time")
    args = parser.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(args.path, encoding="utf-8") as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            frames = [re.sub(r":\d+\)$", ")", fr) for fr in stack.split(";")]
            if args.within and not any(args.within in fr for fr in frames):
                continue
            for frame in set(frames):
                inclusive[frame] += count
            own[frames[-1]] += count
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    print(f"{'incl %':>7} {'self %':>7}  frame")
    shown = 0
    for frame, _ in (own if args.self else inclusive).most_common():
        n = inclusive[frame]
        if args.match and args.match not in frame:
            continue
        print(f"{100 * n / total:7.1f} {100 * own[frame] / total:7.1f}  {frame[:150]}")
        shown += 1
        if shown >= args.top:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
